"""What replicas agree on — handled events and the sync lease — in a real Redis and in the local SQLite file.

Each test opens two coordinators on one store, as two replicas would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from retrieval.sync import SyncReport
from bot.syncing.lease import LEASE_NAME, LeasedSync, SyncSkipped
from tests.bot.app.serve_fixtures import redis_url  # noqa: F401 - fixture


@pytest.fixture(params=["redis", "local"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Coordinator, Coordinator]]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        a, b = RedisCoordinator(url), RedisCoordinator(url)
    else:
        a, b = LocalCoordinator(tmp_path / "c.sqlite"), LocalCoordinator(tmp_path / "c.sqlite")
    yield a, b
    a.close()
    b.close()


def test_an_event_is_claimed_once_across_replicas_until_it_expires(pair):
    a, b = pair
    assert a.claim("feishu:event:ev1", 0.5) is True
    assert b.claim("feishu:event:ev1", 0.5) is False
    assert a.claim("feishu:event:ev1", 0.5) is False
    assert b.claim("feishu:event:ev2", 0.5) is True
    time.sleep(0.7)
    assert b.claim("feishu:event:ev1", 0.5) is True


def test_concurrent_claims_of_one_event_have_one_winner(pair):
    a, b = pair
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(c: Coordinator) -> None:
        barrier.wait()
        wins.append(c.claim("slack:event:Ev0001", 60))

    threads = [threading.Thread(target=claim, args=(c,)) for c in (a, b) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_a_lease_held_by_a_dead_replica_lapses_after_its_ttl(pair):
    a, b = pair
    assert a.acquire_lease("sync", "replica-a", 0.6)
    assert not b.acquire_lease("sync", "replica-b", 0.6)
    assert b.lease_holder("sync") == "replica-a"
    # replica-a dies without releasing: the lease blocks b for one TTL, no longer
    time.sleep(0.8)
    assert b.acquire_lease("sync", "replica-b", 0.6)
    assert a.lease_holder("sync") == "replica-b"
    assert not a.acquire_lease("sync", "replica-a", 0.6)
    a.release_lease("sync", "replica-a")  # not its lease: nothing happens
    assert a.lease_holder("sync") == "replica-b"
    b.release_lease("sync", "replica-b")
    assert a.lease_holder("sync") is None and a.acquire_lease("sync", "replica-a", 0.6)


class SlowSync:
    def __init__(self, seconds: float, ok: bool = True) -> None:
        self.seconds, self.ok, self.calls = seconds, ok, 0

    def __call__(self) -> SyncReport:
        self.calls += 1
        time.sleep(self.seconds)
        return SyncReport(added=1, ok=self.ok)


def test_a_sync_longer_than_the_lease_keeps_it_by_renewing(pair):
    a, b = pair
    slow = SlowSync(1.5)
    first = LeasedSync(slow, a, owner="replica-a", ttl_seconds=0.45)
    second = LeasedSync(SlowSync(0), b, owner="replica-b", ttl_seconds=0.45)
    runner = threading.Thread(target=first)
    runner.start()
    time.sleep(0.2)
    seen = []
    end = time.monotonic() + 1.0  # well inside the 1.5 s sync, three TTLs long: only renewal keeps b out
    while time.monotonic() < end:
        with pytest.raises(SyncSkipped) as skipped:
            second()
        seen.append(skipped.value.holder)
        time.sleep(0.1)
    runner.join()
    assert len(seen) >= 8 and set(seen) == {"replica-a"}
    assert slow.calls == 1
    assert a.lease_holder(LEASE_NAME) is None  # released when done (no settle period)
    assert second().ok


def test_after_a_good_sync_the_lease_settles_so_the_next_replicas_tick_is_skipped(pair):
    a, b = pair
    first = LeasedSync(SlowSync(0), a, owner="replica-a", ttl_seconds=30, settle_seconds=0.6)
    other = SlowSync(0)
    second = LeasedSync(other, b, owner="replica-b", ttl_seconds=30, settle_seconds=0.6)
    assert first().ok
    with pytest.raises(SyncSkipped, match="replica-a"):
        second()
    time.sleep(0.8)
    assert second().ok and other.calls == 1


def test_a_failed_sync_frees_the_lease_at_once(pair):
    a, b = pair

    def broken() -> SyncReport:
        raise RuntimeError("qdrant went away")

    with pytest.raises(RuntimeError):
        LeasedSync(broken, a, owner="replica-a", ttl_seconds=30, settle_seconds=60)()
    assert b.lease_holder(LEASE_NAME) is None
    assert not LeasedSync(SlowSync(0, ok=False), b, owner="replica-b", ttl_seconds=30, settle_seconds=60)().ok
    assert a.lease_holder(LEASE_NAME) is None  # a partial sync does not settle either


def test_a_settled_lease_is_taken_by_its_owners_next_run_and_by_a_manual_sync_not_by_others(pair):
    a, b = pair
    scheduled = LeasedSync(SlowSync(0), a, owner="replica-a", ttl_seconds=30, settle_seconds=30)
    assert scheduled().ok
    assert a.lease_holder(LEASE_NAME) == "replica-a/settled"
    with pytest.raises(SyncSkipped):
        LeasedSync(SlowSync(0), b, owner="replica-b", ttl_seconds=30, settle_seconds=30)()
    assert scheduled().ok  # replica-a's own next period
    manual = LeasedSync(SlowSync(0), b, owner="operator", ttl_seconds=30, take_settled=True)
    assert manual().ok
    assert b.lease_holder(LEASE_NAME) is None  # a manual sync does not settle


def test_a_running_sync_is_never_taken_over_even_by_a_manual_one(pair):
    a, b = pair
    running = threading.Thread(target=LeasedSync(SlowSync(1.0), a, owner="replica-a", ttl_seconds=30))
    running.start()
    time.sleep(0.2)
    with pytest.raises(SyncSkipped, match="replica-a"):
        LeasedSync(SlowSync(0), b, owner="operator", ttl_seconds=30, take_settled=True)()
    running.join()
