"""`wikibot serve`'s two processes, through the real process and the fakes (issue 16 item 5, issue 10).

The front acknowledges a correctly signed event without waiting for the worker: shown by freezing the
worker (SIGSTOP) — a front that waited on it would not answer at all — and, once it runs again, by the
question being answered exactly once. Everything else still goes through the worker, and the two
processes live and die together.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.bot.app.serve_fixtures import *  # noqa: F403 - fixtures
from tests.bot.app.serve_fixtures import (SLACK_SIGNING_SECRET, ServeProcess, feishu_and_slack, metric,
                                          wait_for_answer, wait_until)
from tests.fakes import slack_requests as sr
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.feishu import FakeFeishu
from tests.fakes.slack_server import FakeSlack

SIGNING_SECRET = SLACK_SIGNING_SECRET
ACK_BOUND = 10.0  # the acknowledgement must come at all while the worker is frozen; not a speed limit


@pytest.fixture
async def serve(tmp_path: Path, feishu_wiki: FakeFeishu, fake_slack: FakeSlack,
                anthropic: FakeAnthropic) -> AsyncIterator[ServeProcess]:
    proc = await feishu_and_slack(tmp_path, "front", feishu_wiki, fake_slack, anthropic)
    try:
        yield proc
    finally:
        proc.kill()


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_feishu_events_are_acknowledged_while_the_worker_is_frozen_and_answered_once(
        serve: ServeProcess, feishu_wiki: FakeFeishu, anthropic: FakeAnthropic):
    worker = serve.worker_pid()
    event = feishu_wiki.im.message_event("VPN 连接失败怎么办？")
    mid = event["event"]["message"]["message_id"]
    with _frozen(worker):
        first = await asyncio.wait_for(serve.deliver(event), ACK_BOUND)
        again = await asyncio.wait_for(serve.deliver(event), ACK_BOUND)  # Feishu redelivers, at least once
        assert first.status_code == 200 and first.json() == {"msg": "success"}
        assert again.status_code == 200
        await asyncio.sleep(0.5)
        assert feishu_wiki.im.replies_to(mid) == []  # nothing answered: the worker is frozen
    replies = await wait_for_answer(feishu_wiki, mid)
    await asyncio.sleep(1.0)
    assert len(feishu_wiki.im.replies_to(mid)) == 1 and "WireGuard" in replies[0].text()
    assert len(anthropic.answer_requests) == 1
    assert metric(serve.url, "wikibot_events_deduplicated_total", platform="feishu") == 1
    assert metric(serve.url, "wikibot_ack_seconds_count", platform="feishu") == 2  # the front's two acks


async def test_slack_events_and_commands_are_acknowledged_while_the_worker_is_frozen(
        serve: ServeProcess, fake_slack: FakeSlack):
    worker = serve.worker_pid()
    mention = sr.mention("VPN 连接失败怎么办？")
    url = serve.url + "/slack/events"
    with _frozen(worker):
        acks = [await asyncio.wait_for(sr.event_request(url, sr.envelope(mention), SIGNING_SECRET).send(),
                                       ACK_BOUND),
                await asyncio.wait_for(sr.command_request(url, sr.command_form(
                    "/ref", "VPN", response_url=fake_slack.response_url()), SIGNING_SECRET).send(), ACK_BOUND)]
        assert [a.status_code for a in acks] == [200, 200] and [a.text for a in acks] == ["", ""]
    answer = await wait_until(lambda: [m for m in fake_slack.posted(channel="CGENERAL", thread_ts=mention["ts"])
                                       if "WireGuard" in m.text], 60)
    assert len(answer) == 1


async def test_what_the_front_cannot_judge_goes_to_the_worker(serve: ServeProcess, feishu_wiki: FakeFeishu):
    # a forged signature is refused by the worker's adapter, with its count, as without the front
    event = feishu_wiki.im.message_event("VPN 连接失败怎么办？")
    body = json.dumps(event).encode()
    forged = httpx.post(serve.url + "/feishu/events", content=body, timeout=10, headers={
        "X-Lark-Request-Timestamp": str(int(time.time())), "X-Lark-Request-Nonce": "n-1",
        "X-Lark-Signature": "0" * 64, "Content-Type": "application/json"})
    assert forged.status_code == 401
    assert metric(serve.url, "wikibot_events_rejected_total", platform="feishu", reason="bad_signature") == 1
    # a Slack command without words: its usage text is the acknowledgement, so the worker gives it
    usage = await sr.command_request(serve.url + "/slack/events", sr.command_form(
        "/ref", "", response_url="http://127.0.0.1:9/none"), SIGNING_SECRET).send()
    assert usage.status_code == 200 and "/ref" in usage.text
    # an oversized body is refused by the front, and counted where /metrics is
    big = httpx.post(serve.url + "/slack/events", content=b"x" * 2_000_000, timeout=10)
    assert big.status_code == 413
    assert await wait_until(lambda: metric(serve.url, "wikibot_events_rejected_total", platform="slack",
                                           reason="too_large") == 1, 10)


async def test_the_worker_does_not_outlive_the_front(serve: ServeProcess):
    worker = serve.worker_pid()
    assert _alive(worker)
    serve.kill()  # SIGKILL: the front gets no chance to stop it
    assert await wait_until(lambda: not _alive(worker), 10, interval=0.05)


async def test_a_second_serve_on_the_same_index_exits_with_the_workers_error(serve: ServeProcess,
                                                                           tmp_path: Path):
    (tmp_path / "second").mkdir()
    second = ServeProcess("second", tmp_path / "second", dict(serve.env)).start()  # same WIKIBOT_DATA_DIR
    assert second.proc is not None
    code = await asyncio.to_thread(second.proc.wait, 120)
    assert code not in (0, None)
    assert "locked" in second.logs() or "in use" in second.logs()
    assert serve.health()["ok"] is True  # the first is untouched


@pytest.fixture
async def serve_connections(tmp_path: Path, feishu_wiki: FakeFeishu, fake_slack: FakeSlack,
                            anthropic: FakeAnthropic) -> AsyncIterator[ServeProcess]:
    """Feishu's long connection and Slack's Socket Mode, the defaults: the front holds both connections."""
    proc = await feishu_and_slack(tmp_path, "connections", feishu_wiki, fake_slack, anthropic,
                                  FEISHU_EVENT_MODE="ws", SLACK_MODE="socket", SLACK_APP_TOKEN=fake_slack.app_token)
    try:
        await wait_until(lambda: proc.health()["ok"], 30, interval=0.1)
        yield proc
    finally:
        proc.kill()


async def test_the_front_holds_the_connections_and_health_shows_them(serve_connections: ServeProcess,
                                                                     feishu_wiki: FakeFeishu,
                                                                     fake_slack: FakeSlack):
    health = serve_connections.health()
    assert health["adapters"]["feishu"]["long_connection"] is True and health["adapters"]["feishu"]["ok"]
    assert health["adapters"]["slack"]["socket_connected"] is True and health["adapters"]["slack"]["ok"]
    assert fake_slack.socket_connections == 1 and feishu_wiki.im.ws_connected.is_set()


async def test_connection_events_are_acknowledged_while_the_worker_is_frozen_and_answered_once(
        serve_connections: ServeProcess, feishu_wiki: FakeFeishu, fake_slack: FakeSlack,
        anthropic: FakeAnthropic):
    worker = serve_connections.worker_pid()
    event = feishu_wiki.im.message_event("VPN 连接失败怎么办？")
    mid = event["event"]["message"]["message_id"]
    mention = sr.mention("发布流程是怎样的？")
    with _frozen(worker):
        ack = await feishu_wiki.im.ws_deliver(event, timeout=ACK_BOUND)
        again = await feishu_wiki.im.ws_deliver(event, timeout=ACK_BOUND)  # redelivered on the connection
        assert ack["code"] == 200 and again["code"] == 200
        envelope_id = fake_slack.socket_send("events_api", sr.envelope(mention))
        assert await wait_until(lambda: envelope_id in fake_slack.socket_acks, ACK_BOUND, interval=0.02)
        assert feishu_wiki.im.replies_to(mid) == []
    replies = await wait_for_answer(feishu_wiki, mid)
    slack_answer = await wait_until(lambda: [m for m in fake_slack.posted(channel="CGENERAL",
                                                                          thread_ts=mention["ts"])
                                             if "Argo CD" in m.text], 60)
    await asyncio.sleep(1.0)
    assert len(feishu_wiki.im.replies_to(mid)) == 1 and "WireGuard" in replies[0].text()
    assert len(slack_answer) == 1
    assert metric(serve_connections.url, "wikibot_ack_seconds_count", platform="feishu") == 2
    assert metric(serve_connections.url, "wikibot_ack_seconds_count", platform="slack") == 1


async def test_a_card_click_on_the_connection_gets_the_workers_toast(serve_connections: ServeProcess,
                                                                     feishu_wiki: FakeFeishu):
    event = feishu_wiki.im.message_event("VPN 连接失败怎么办？")
    await feishu_wiki.im.ws_deliver(event)
    [reply] = await wait_for_answer(feishu_wiki, event["event"]["message"]["message_id"])
    value = next(el for el in reply.card["body"]["elements"] if el["tag"] == "column_set")[
        "columns"][0]["elements"][0]["behaviors"][0]["value"]
    answer = await feishu_wiki.im.ws_deliver(feishu_wiki.im.card_action_event(reply, value, user="ou_fan"),
                                             timeout=ACK_BOUND)
    assert answer["code"] == 200 and answer["data"]["toast"]["type"] == "success"
    assert await wait_until(lambda: metric(serve_connections.url, "wikibot_feedback_total", platform="feishu",
                                           value="up") == 1, 10)


async def test_a_port_in_use_is_said_at_once_before_the_worker_loads_anything(tmp_path: Path,
                                                                             feishu_wiki: FakeFeishu):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = ServeProcess.feishu(tmp_path, "clash", feishu_wiki)
        proc.port = taken.getsockname()[1]
        proc.start()
        assert proc.proc is not None
        code = await asyncio.to_thread(proc.proc.wait, 60)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{proc.port}" in proc.logs()
    assert "worker" not in proc.logs()  # never started


async def test_a_worker_that_dies_takes_the_front_down_with_a_failure_code(serve: ServeProcess):
    """A supervisor (systemd, Docker, Kubernetes) then restarts `serve`; a front left acknowledging events
    that nobody answers would be worse than none."""
    assert serve.proc is not None
    os.kill(serve.worker_pid(), signal.SIGKILL)
    code = await asyncio.to_thread(serve.proc.wait, 60)
    assert code != 0
    assert "the worker process exited" in serve.logs()
