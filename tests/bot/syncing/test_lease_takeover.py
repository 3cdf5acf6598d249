"""A sync lease held by a process on this machine that is gone is taken over at once; others wait.

Holders are real processes (a `python -c` child that takes the lease and is killed, or keeps running),
on both coordinators (a real Redis and the local SQLite file).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from bot.syncing.lease import LEASE_NAME, SETTLED, LeasedSync, SyncSkipped, holder_is_gone, replica_id
from retrieval.sync import SyncReport
from tests.bot.app.serve_fixtures import redis_url  # noqa: F401 - fixture

HOLD = """
import sys, time
from bot.infra.coordination import LocalCoordinator, RedisCoordinator
from bot.syncing.lease import replica_id
store = sys.argv[1]
c = RedisCoordinator(store) if store.startswith("redis://") else LocalCoordinator(__import__("pathlib").Path(store))
owner = replica_id() + sys.argv[2]
assert c.acquire_lease("sync", owner, 600)
print(owner, flush=True)
time.sleep(600)
"""


@pytest.fixture(params=["redis", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Coordinator]]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        coordinator: Coordinator = RedisCoordinator(url)
        yield url, coordinator
    else:
        path = tmp_path / "coordination.sqlite"
        coordinator = LocalCoordinator(path)
        yield str(path), coordinator
    coordinator.close()


def _holder(store: str, suffix: str = "") -> tuple[subprocess.Popen[str], str]:
    """A child process that takes the sync lease (TTL 10 minutes) and sleeps; its owner string."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, store, suffix], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[3])
    assert proc.stdout is not None
    owner = proc.stdout.readline().strip()
    assert owner, "the holder did not start"
    return proc, owner


def _ok_sync() -> SyncReport:
    return SyncReport(added=1, ok=True)


def test_the_owner_names_host_pid_and_process_start():
    host, pid, started, suffix = replica_id().split(":")
    assert (host, pid) == (socket.gethostname(), str(os.getpid()))
    assert started and len(suffix) == 6
    assert replica_id().split(":")[2] == started  # the same process, the same start


def test_a_lease_held_by_a_killed_local_process_is_taken_over_at_once(store):
    where, coordinator = store
    proc, owner = _holder(where)
    assert holder_is_gone(owner) is False  # alive
    with pytest.raises(SyncSkipped):
        LeasedSync(_ok_sync, coordinator, ttl_seconds=600)()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert holder_is_gone(owner) is True
    started = time.monotonic()
    report = LeasedSync(_ok_sync, coordinator, ttl_seconds=600, take_settled=True)()
    assert report.ok and time.monotonic() - started < 60  # not the 600 s lease expiry
    assert coordinator.lease_holder(LEASE_NAME) is None


def test_a_pid_reused_by_a_later_process_is_not_mistaken_for_the_holder(store):
    where, coordinator = store
    host, pid, started, suffix = replica_id().split(":")
    boot, namespace, ticks = started.split(".")
    # this very (live) pid, but a start time it never had: the holder was an earlier process with this pid
    earlier = f"{host}:{pid}:{boot}.{namespace}.{int(ticks) - 1}:{suffix}"
    assert coordinator.acquire_lease(LEASE_NAME, earlier, 600)
    assert holder_is_gone(earlier) is True
    assert LeasedSync(_ok_sync, coordinator, ttl_seconds=600)().ok


def test_a_holder_on_another_host_or_unknown_waits_for_the_expiry(store):
    where, coordinator = store
    _, pid, started, suffix = replica_id().split(":")
    for holder in (f"another-host:999999:{started}:{suffix}", "replica-a", f"{socket.gethostname()}:999999::abc"):
        assert coordinator.acquire_lease(LEASE_NAME, holder, 600)
        assert holder_is_gone(holder) is False
        with pytest.raises(SyncSkipped):
            LeasedSync(_ok_sync, coordinator, ttl_seconds=600)()
        coordinator.release_lease(LEASE_NAME, holder)


def test_a_settled_lease_of_a_gone_process_still_holds_off_scheduled_runs(store):
    """It means "synced moments ago", whoever is left: only a manual sync takes it over, as before."""
    where, coordinator = store
    proc, owner = _holder(where, SETTLED)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.raises(SyncSkipped):
        LeasedSync(_ok_sync, coordinator, ttl_seconds=600)()
    assert LeasedSync(_ok_sync, coordinator, ttl_seconds=600, take_settled=True)().ok
