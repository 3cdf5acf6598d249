"""One wiki sync at a time across replicas: the sync lease.

Every `serve` replica runs the sync schedule. Before a run, a replica takes the
lease `sync` in the shared coordinator (Redis with several replicas, a local
SQLite file with one); a replica that cannot take it skips that run. While the
sync runs, the holder renews the lease every third of its TTL, so a replica that
dies mid-sync blocks the others for at most one TTL, never for good; and a holder
that was a process on this same machine, now gone (a `wikibot sync` killed half
way), is seen to be gone (pid and process start time) and taken over at once.

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
from pathlib import Path

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
    """Who this process is, in lease records and logs: host, pid, the process's start (see
    `process_start`) and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}:{uuid.uuid4().hex[:6]}"


def process_start(pid: int) -> str:
    """When process `pid` started, as `<boot id>.<pid namespace>.<clock ticks since boot>` (Linux /proc);
    "" when there is no such process here (or no /proc). A pid reused by a later process, or the same
    pid after a reboot, gives another value."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = stat.rsplit(")", 1)[1].split()[19]  # field 22, starttime; the name in (…) may hold spaces
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.readlink(f"/proc/{pid}/ns/pid").strip("pid:[]")
    except (OSError, IndexError):
        return ""
    return f"{boot}.{namespace}.{ticks}"


def holder_is_gone(holder: str) -> bool:
    """True when `holder` names a process on this machine (same host name, boot and pid namespace)
    that no longer runs: its pid is gone, or belongs to a process started later. A holder elsewhere,
    or one this machine cannot judge, is left to the lease's expiry."""
    parts = holder.removesuffix(SETTLED).split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit() or not parts[2]:
        return False
    mine = process_start(os.getpid())
    boot, namespace, _ = (parts[2].split(".") + ["", ""])[:3]
    if not mine or mine.split(".")[:2] != [boot, namespace]:
        return False
    return process_start(int(parts[1])) != parts[2]


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
        if holder and not holder.endswith(SETTLED) and holder_is_gone(holder):
            log.warning("the sync lease is held by %s, a process on this machine that is gone (killed "
                        "mid-sync?); taking it over", holder)
            c.release_lease(LEASE_NAME, holder)  # only if it is still that holder's
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
