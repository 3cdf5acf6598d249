"""`wikibot serve` as a real process: health, metrics, the sync at start-up, answering, and SIGTERM.

The process talks to the fake Feishu (wiki + messaging) and the fake Anthropic on 127.0.0.1, exactly as it
would talk to the real services; the test only sees what an operator sees: HTTP endpoints, the log file,
messages on the platform, the exit code.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.feishu import FakeFeishu
from tests.bot.app.serve_fixtures import *  # noqa: F403 - fixtures
from tests.bot.app.serve_fixtures import (APP_SECRET, ENCRYPT_KEY, PAGES, ServeProcess, metric, wait_for_answer,
                                        wait_until)


@pytest.fixture
async def serve(tmp_path: Path, feishu_wiki: FakeFeishu, anthropic: FakeAnthropic) -> AsyncIterator[ServeProcess]:
    proc = ServeProcess.feishu(tmp_path, "replica", feishu_wiki, ANTHROPIC_API_KEY=anthropic.api_key,
                               ANTHROPIC_BASE_URL=anthropic.url, WIKIBOT_LOG_LEVEL="DEBUG").start()
    try:
        proc.wait_ready()
        await wait_until(lambda: (proc.health().get("sync") or {}).get("last"), 60, interval=0.1)  # start-up sync
        yield proc
    finally:
        proc.kill()


async def test_an_empty_index_is_synced_at_start_up_and_health_reports_every_part(serve: ServeProcess):
    health = serve.health()
    assert health["ok"] is True and health["draining"] is False
    assert health["index"] == {"ok": True, "pages": len(PAGES)}
    feishu = health["adapters"]["feishu"]
    assert feishu["ok"] and feishu["mode"] == "webhook" and feishu["bot_identity"]
    sync = health["sync"]
    assert sync["ok"] and sync["schedule"] == "every 60 min" and sync["next_run"]
    assert sync["last"]["added"] == len(PAGES) and sync["last"]["failed"] == []


async def test_a_question_is_answered_and_counted_in_the_metrics(serve: ServeProcess, feishu_wiki: FakeFeishu,
                                                                  anthropic: FakeAnthropic):
    event = feishu_wiki.im.message_event("VPN 连接失败怎么办？")
    resp = await serve.deliver(event)
    assert resp.status_code == 200
    replies = await wait_for_answer(feishu_wiki, event["event"]["message"]["message_id"])
    assert len(replies) == 1 and "VPN" in replies[0].text()
    assert len(anthropic.answer_requests) == 1

    metrics = httpx.get(serve.url + "/metrics", timeout=5)
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    url = serve.url
    assert metric(url, "wikibot_questions_total", platform="feishu", mode="llm", covered="true") == 1
    assert metric(url, "wikibot_ack_seconds_count", platform="feishu") >= 1
    assert metric(url, "wikibot_answer_seconds_count", platform="feishu") == 1
    assert metric(url, "wikibot_retrieval_seconds_count") >= 1
    assert metric(url, "wikibot_sync_runs_total", result="ok") == 1
    assert metric(url, "wikibot_sync_pages_total", outcome="added") == len(PAGES)
    for family in ("wikibot_llm_errors_total", "wikibot_events_deduplicated_total"):
        assert f"# TYPE {family} counter" in text

    again = await serve.deliver(event)  # Feishu delivers at least once
    assert again.status_code == 200
    await asyncio.sleep(1.0)
    assert len(feishu_wiki.im.replies_to(event["event"]["message"]["message_id"])) == 1
    assert metric(url, "wikibot_events_deduplicated_total", platform="feishu") == 1


async def test_sigterm_finishes_the_answer_in_flight_then_exits_cleanly(serve: ServeProcess,
                                                                        feishu_wiki: FakeFeishu,
                                                                        anthropic: FakeAnthropic):
    anthropic.delay_seconds = 3.0  # the answer is still being generated when SIGTERM comes
    event = feishu_wiki.im.message_event("VPN 连接失败怎么办？")
    mid = event["event"]["message"]["message_id"]
    assert (await serve.deliver(event)).status_code == 200
    await wait_until(lambda: feishu_wiki.im.replies_to(mid), 30)  # the searching card
    assert serve.proc is not None
    serve.proc.send_signal(15)
    draining = await wait_until(lambda: _draining(serve), 10, interval=0.05)
    assert draining.status_code == 503 and draining.json()["draining"] is True
    late = await serve.deliver(feishu_wiki.im.message_event("值班什么时候交接？"))
    assert late.status_code == 503  # sent back, for Feishu to deliver again (to another replica)
    code = await asyncio.to_thread(serve.terminate, 60)
    assert code == 0
    replies = feishu_wiki.im.replies_to(mid)
    assert len(replies) == 1 and "👍" in replies[0].text() and "WireGuard" in replies[0].text()
    records = serve.log_records()
    answered = [r for r in records if r["msg"] == "feishu: answered"]
    assert [(a["message_id"], a["mode"], a["delivered"]) for a in answered] == [(mid, "llm", True)]
    assert answered[0]["seconds"] >= 3.0  # it really was in flight when SIGTERM came
    order = [r["msg"] for r in records if r["logger"] == "bot.app.serve"]
    assert order[-2:] == ["shutting down: no new events, finishing answers in flight (up to 20.0s)", "stopped"]


async def test_debug_logs_are_json_lines_without_secrets(serve: ServeProcess, feishu_wiki: FakeFeishu,
                                                         anthropic: FakeAnthropic):
    event = feishu_wiki.im.message_event("值班什么时候交接？")
    await serve.deliver(event)
    await wait_for_answer(feishu_wiki, event["event"]["message"]["message_id"])
    serve.terminate()
    records = serve.log_records()
    lines = [line for line in serve.logs().splitlines() if line.strip()]
    assert len(records) == len(lines) > 5  # every line is one JSON object
    assert any(r["level"] == "DEBUG" for r in records)
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
    text = serve.logs()
    for secret in (APP_SECRET, ENCRYPT_KEY, anthropic.api_key):
        assert secret not in text
    assert not re.search(r"t-[0-9a-zA-Z]{20,}", text)  # tenant access tokens


def _draining(serve: ServeProcess) -> httpx.Response | None:
    r = httpx.get(serve.url + "/healthz", timeout=5)
    return r if r.json().get("draining") else None


def test_serve_with_no_platform_configured_refuses_to_start_naming_the_keys(tmp_path: Path):
    proc = ServeProcess("bare", tmp_path, {"WIKIBOT_CONFIG": str(tmp_path / "empty.toml"),
                                           "WIKIBOT_DATA_DIR": str(tmp_path / "data")})
    (tmp_path / "empty.toml").write_text("")
    proc.start()
    assert proc.proc is not None and proc.proc.wait(60) == 2
    out = proc.logs()
    assert "FEISHU_APP_ID" in out and "SLACK_BOT_TOKEN" in out
