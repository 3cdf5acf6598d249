"""The sync schedule inside `wikibot serve`: APScheduler 3.x on the bot's event loop.

The sync itself is sync code and CPU-heavy, so each run goes to a worker thread; the loop keeps
answering. One job, `max_instances=1` (never two syncs at once) and `coalesce=True` (runs missed
while one was going, or while the process slept, collapse into one). With an empty index the first
run starts at once instead of an interval later. Interval 0 and no cron expression: no schedule.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.syncing.lease import SyncSkipped
from retrieval.sync import SyncReport, SyncStopped

if TYPE_CHECKING:
    from bot.answering.wikibot import WikiBot
    from bot.infra.config import Settings
    from retrieval.sources import WikiSource

log = logging.getLogger(__name__)
JOB_ID = "wiki-sync"
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


class SyncScheduler:
    """Runs `run_sync` on a schedule. If `run_sync` has a `stop()` method, shutdown calls it so a
    running sync ends at the next page boundary (the index stays consistent; the next run resumes)."""

    def __init__(self, run_sync: Callable[[], SyncReport], interval_minutes: int = 60, cron: str = "",
                 index_empty: bool = False, timezone: Any = None) -> None:
        self._run_sync = run_sync
        self.interval_minutes = interval_minutes
        self.cron = cron.strip()
        self.index_empty = index_empty
        self._timezone = timezone
        self._scheduler: Any = None
        self.last_report: SyncReport | None = None
        self.last_skipped: dict[str, str] | None = None  # the last run left to another replica
        self.running = False
        self.after_sync: Callable[[], None] | None = None  # e.g. drop cached access answers
        if self.cron:
            self._trigger()  # a bad expression fails at start-up, not at the first run

    @property
    def enabled(self) -> bool:
        return bool(self.cron) or self.interval_minutes > 0

    def _trigger(self) -> Any:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.cron:
            try:
                return CronTrigger.from_crontab(crontab_for_apscheduler(self.cron), timezone=self._timezone)
            except ValueError as exc:
                raise ValueError(f"invalid wikibot.sync_cron {self.cron!r} (WIKIBOT_SYNC_CRON): {exc}") from None
        return IntervalTrigger(minutes=self.interval_minutes, timezone=self._timezone)

    def start(self) -> None:
        """Call from within the running event loop."""
        if not self.enabled:
            log.info("wiki sync schedule is off (sync_interval_minutes = 0, no sync_cron)")
            return
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        kwargs: dict[str, Any] = {"id": JOB_ID, "max_instances": 1, "coalesce": True,
                                  "misfire_grace_time": None, "replace_existing": True}
        self._scheduler = AsyncIOScheduler(**({"timezone": self._timezone} if self._timezone else {}))
        if self.index_empty:
            kwargs["next_run_time"] = datetime.now(self._scheduler.timezone)
        self._scheduler.add_job(self._job, self._trigger(), **kwargs)
        self._scheduler.start()
        log.info("wiki sync scheduled (%s); next run %s",
                 f"cron {self.cron}" if self.cron else f"every {self.interval_minutes} min", self.next_run_time)

    @property
    def period_seconds(self) -> float:
        """The time between two runs (for a cron schedule: between its next two fire times)."""
        if not self.cron:
            return self.interval_minutes * 60.0
        trigger = self._trigger()
        first = trigger.get_next_fire_time(None, datetime.now(trigger.timezone))
        second = trigger.get_next_fire_time(first, first) if first else None
        if first is None or second is None:
            return 0.0
        return (second - first).total_seconds()

    def status(self) -> dict[str, Any]:
        """The schedule and the last run, for /healthz."""
        r = self.last_report
        nxt = self.next_run_time
        return {"ok": r is None or r.ok, "running": self.running,
                "schedule": (f"cron {self.cron}" if self.cron else f"every {self.interval_minutes} min")
                if self.enabled else "off",
                "next_run": nxt.isoformat(timespec="seconds") if nxt else None,
                "last": r.to_dict() if r else None, "last_skipped": self.last_skipped}

    @property
    def next_run_time(self) -> datetime | None:
        job = self._scheduler.get_job(JOB_ID) if self._scheduler else None
        return job.next_run_time if job else None

    def run_soon(self) -> bool:
        """Move the next run to now (unless one is going); False if there is no schedule."""
        job = self._scheduler.get_job(JOB_ID) if self._scheduler else None
        if job is None:
            return False
        job.modify(next_run_time=datetime.now(self._scheduler.timezone))
        return True

    def shutdown(self) -> None:
        stop = getattr(self._run_sync, "stop", None)
        if callable(stop):
            stop()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def wait_idle(self, poll_seconds: float = 0.1) -> None:
        """Return once no sync is running (bound it with a timeout)."""
        while self.running:
            await asyncio.sleep(poll_seconds)

    async def _job(self) -> None:
        self.running = True
        # APScheduler's shutdown cancels this coroutine, but the sync thread cannot be cancelled: it runs
        # on to its next page boundary. So `running` follows the thread, and `wait_idle` waits for it.
        work = asyncio.ensure_future(asyncio.to_thread(self._run_sync))
        work.add_done_callback(self._sync_ended)
        try:
            self.last_report = await asyncio.shield(work)
            r = self.last_report
            log.info("wiki sync: %d added, %d updated, %d unchanged, %d removed, %d skipped, %d failed, "
                     "%d chunks embedded in %.1fs", r.added, r.updated, r.unchanged, r.removed,
                     len(r.skipped), len(r.failed), r.chunks_embedded, r.seconds)
            if self.after_sync is not None:
                self.after_sync()
        except SyncSkipped as skipped:
            self.last_skipped = {"at": datetime.now().astimezone().isoformat(timespec="seconds"),
                                 "holder": skipped.holder or ""}
            log.info("wiki sync skipped: %s", skipped)
        except SyncStopped:
            log.info("wiki sync stopped on shutdown; the next run picks up where it left off")
        except Exception as exc:
            log.exception("wiki sync failed")
            self.last_report = SyncReport(started_at=datetime.now().astimezone().isoformat(timespec="seconds"),
                                          listing_complete=False, errors=[f"sync failed: {exc}"], ok=False)

    def _sync_ended(self, work: asyncio.Future[SyncReport]) -> None:
        self.running = False
        if not work.cancelled():
            work.exception()  # retrieved here too, for when the job awaiting it was cancelled


def start_for_serve(settings: "Settings", bot: "WikiBot", source: "WikiSource") -> SyncScheduler:
    """The schedule `wikibot serve` runs: the wiki source into the bot's index, under the
    sync lease shared by every replica, first run at once when the index is empty."""
    from bot.syncing.lease import LeasedSync
    from bot.syncing.runner import SyncRunner

    w = settings.wikibot
    leased = LeasedSync(SyncRunner(bot.index, source, settings.data_dir), bot.coordinator,
                        ttl_seconds=w.sync_lease_seconds)
    scheduler = SyncScheduler(leased, w.sync_interval_minutes, w.sync_cron,
                              index_empty=bot.index.count_pages() == 0)
    leased.settle_seconds = 0.9 * scheduler.period_seconds
    scheduler.start()
    return scheduler


def crontab_for_apscheduler(expr: str) -> str:
    """A standard crontab line with its day-of-week field spelled in names.

    APScheduler 3.x reads weekday numbers with 0 = Monday; crontab means 0 (and 7) = Sunday.
    Names mean the same to both, so `0 9 * * 1-5` keeps meaning Monday to Friday.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab expression has 5 fields, got {len(fields)}: {expr!r}")
    fields[4] = ",".join(_dow_part(p) for p in fields[4].split(","))
    return " ".join(fields)


def _dow_part(part: str) -> str:
    m = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
    if not m:
        return part  # names (mon-fri), `?`-free forms APScheduler understands as they are
    start, end, step = m.group(1), m.group(2), m.group(3)
    if start == "*" and step is None:
        return "*"
    lo = 0 if start == "*" else int(start)
    hi = 6 if start == "*" else int(end) if end is not None else (6 if step else lo)
    if not (0 <= lo <= 7 and 0 <= hi <= 7):
        raise ValueError(f"day of week out of range in {part!r}")
    days = sorted({d % 7 for d in range(lo, hi + 1, int(step or 1))})
    return ",".join(_DAYS[d] for d in days)
