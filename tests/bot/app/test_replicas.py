"""Two `wikibot serve` replicas sharing a real Redis: one event gets one answer, one sync runs per period.

Each replica has its own data folder (no Qdrant server can run on these machines, so the shared index
stays configuration-only); everything they must agree on goes through Redis, as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.feishu import FakeFeishu
from tests.bot.app.serve_fixtures import *  # noqa: F403 - fixtures
from tests.bot.app.serve_fixtures import PAGES, ServeProcess, docx_downloads, metric, wait_for_answer, wait_until


@pytest.fixture
def replicas(tmp_path: Path, feishu_wiki: FakeFeishu, redis_url: str) -> Iterator[list[ServeProcess]]:
    procs = [ServeProcess.feishu(tmp_path, name, feishu_wiki, REDIS_URL=redis_url).start()
             for name in ("replica-a", "replica-b")]
    try:
        for p in procs:
            p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.kill()


def _sync_outcome(p: ServeProcess) -> str:
    sync = p.health().get("sync") or {}
    if sync.get("last"):
        return "synced"
    if sync.get("last_skipped"):
        return "skipped"
    return ""


def _pid(p: ServeProcess) -> int:
    return p.worker_pid()  # the lease's holder: the process that syncs


async def test_the_schedule_fires_in_both_replicas_and_only_one_syncs(replicas: list[ServeProcess],
                                                                      feishu_wiki: FakeFeishu):
    # both start with an empty index, so both schedules fire at start-up
    outcomes = [await wait_until(lambda p=p: _sync_outcome(p), 90, interval=0.1) for p in replicas]
    assert sorted(outcomes) == ["skipped", "synced"]
    synced, skipped = (replicas if outcomes[0] == "synced" else replicas[::-1])
    assert synced.health()["sync"]["last"]["added"] == len(PAGES)
    holder = skipped.health()["sync"]["last_skipped"]["holder"]
    assert f":{_pid(synced)}:" in holder  # skipped because the other replica held the lease
    assert docx_downloads(feishu_wiki) == len(PAGES)  # each page downloaded once, not once per replica


async def test_one_event_delivered_to_both_replicas_is_answered_once(replicas: list[ServeProcess],
                                                                     feishu_wiki: FakeFeishu):
    event = feishu_wiki.im.message_event("VPN 连接失败怎么办？")
    mid = event["event"]["message"]["message_id"]
    acks = await asyncio.gather(*(p.deliver(event) for p in replicas))
    assert [a.status_code for a in acks] == [200, 200]  # both acknowledge: Feishu must not retry
    await wait_for_answer(feishu_wiki, mid)
    await asyncio.sleep(1.5)  # time for a second answer, were there one
    assert len(feishu_wiki.im.replies_to(mid)) == 1

    # a redelivery hours later, to either replica, is still a repeat
    again = await replicas[1].deliver(event)
    assert again.status_code == 200
    await asyncio.sleep(1.0)
    assert len(feishu_wiki.im.replies_to(mid)) == 1
    dropped = sum(metric(p.url, "wikibot_events_deduplicated_total", platform="feishu") for p in replicas)
    assert dropped == 2  # one at the first double delivery, one at the redelivery


async def test_many_events_each_delivered_to_both_are_answered_once_each(replicas: list[ServeProcess],
                                                                         feishu_wiki: FakeFeishu):
    events = [feishu_wiki.im.message_event(q, user=f"ou_user{i:04d}", chat_id=f"oc_chat{i:04d}")
              for i, q in enumerate(["VPN 怎么连接？", "发布用什么工具？", "值班什么时候交接？", "P1 告警多久响应？"])]
    await asyncio.gather(*(p.deliver(e) for e in events for p in replicas))
    for e in events:
        await wait_for_answer(feishu_wiki, e["event"]["message"]["message_id"])
    await asyncio.sleep(1.5)
    assert [len(feishu_wiki.im.replies_to(e["event"]["message"]["message_id"])) for e in events] == [1, 1, 1, 1]
