"""One wiki sync at a time across replicas: the sync lease.

Every `serve` replica runs the sync schedule. Before a run, a replica takes the
lease `sync` in the shared coordinator (Redis with several replicas, a local
SQLite file with one); a replica that cannot take it skips that run. While the
sync runs, the holder renews the lease every third of its TTL, so a replica that
dies mid-sync blocks the others for at most one TTL, never for good.

After a successful run the lease is kept for `settle_seconds` (most of one
schedule period), under the owner's name with `/settled` added, before it
lapses: every replica's schedule fires once a period, and without that the
replica whose tick comes a minute later would sync the shared index all over
again. The owner's own next run, and a sync an operator starts by hand
(`take_settled`), take a settled lease over; a running sync is never taken over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from bot.infra.coordination import Coordinator
from retrieval.sync import SyncReport

log = logging.getLogger(__name__)
LEASE_NAME = "sync"
SETTLED = "/settled"


class SyncSkipped(Exception):
    """Another replica holds the sync lease (it is syncing, or synced moments ago)."""

    def __init__(self, holder: str | None) -> None:
        super().__init__(f"another replica holds the sync lease ({holder or 'unknown'})")
        self.holder = holder


def replica_id() -> str:
    """Who this process is, in lease records and logs: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeasedSync:
    """Wraps a sync runner (`() -> SyncReport`, optionally with `stop()`) in the sync lease."""

    def __init__(self, run: Callable[[], SyncReport], coordinator: Coordinator, *, owner: str | None = None,
                 ttl_seconds: float = 600.0, settle_seconds: float = 0.0, take_settled: bool = False) -> None:
        if ttl_seconds <= 0:
            raise ValueError("the sync lease needs a positive TTL")
        self._run = run
        self.coordinator = coordinator
        self.owner = owner or replica_id()
        self.ttl_seconds = ttl_seconds
        self.settle_seconds = settle_seconds
        self.take_settled = take_settled

    def __call__(self) -> SyncReport:
        if not self._acquire():
            raise SyncSkipped(self.coordinator.lease_holder(LEASE_NAME))
        done = threading.Event()
        beat = threading.Thread(target=self._renew_until, args=(done,), name="sync-lease", daemon=True)
        beat.start()
        report: SyncReport | None = None
        try:
            report = self._run()
            return report
        finally:
            done.set()
            beat.join()
            self._hand_back(report is not None and report.ok)

    def _acquire(self) -> bool:
        c = self.coordinator
        if c.acquire_lease(LEASE_NAME, self.owner, self.ttl_seconds):
            return True
        holder = c.lease_holder(LEASE_NAME) or ""
        if holder == self.owner + SETTLED or (self.take_settled and holder.endswith(SETTLED)):
            c.release_lease(LEASE_NAME, holder)  # only if it is still that settled lease
            return c.acquire_lease(LEASE_NAME, self.owner, self.ttl_seconds)
        return False

    def stop(self) -> None:
        stop = getattr(self._run, "stop", None)
        if callable(stop):
            stop()

    def _renew_until(self, done: threading.Event) -> None:
        while not done.wait(self.ttl_seconds / 3):
            try:
                held = self.coordinator.acquire_lease(LEASE_NAME, self.owner, self.ttl_seconds)
            except Exception as exc:  # noqa: BLE001 - Redis unreachable for a moment: try again next beat
                log.warning("could not renew the sync lease: %s", exc)
                continue
            if not held:
                log.warning("the sync lease was lost (held by %s); another replica may sync at the same time",
                            self.coordinator.lease_holder(LEASE_NAME))

    def _hand_back(self, succeeded: bool) -> None:
        try:
            self.coordinator.release_lease(LEASE_NAME, self.owner)
            if succeeded and self.settle_seconds > 0:
                self.coordinator.acquire_lease(LEASE_NAME, self.owner + SETTLED, self.settle_seconds)
        except Exception as exc:  # noqa: BLE001 - it lapses by itself within one TTL
            log.warning("could not hand back the sync lease (it expires by itself): %s", exc)
