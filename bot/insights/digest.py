"""The owners' digest: the period's gap topics, posted on a schedule to a Feishu chat and/or a Slack
channel, once per period however many replicas run.

Every replica runs the schedule. A run first takes the `digest` lease in the shared coordinator (the
sync's mechanism: Redis with several replicas, SQLite with one), then claims the period's key; a
replica that gets neither skips. After a post the lease is kept, settled, for most of the period, as
the sync does. The digest shows no question from a space-limited chat (the all-spaces view) and no
asker's id unless configured.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Sequence

from bot.answering.texts import Lang
from bot.infra.coordination import Coordinator
from bot.insights.questions import Scope
from bot.insights.report import ReportOptions, Topic
from bot.insights.service import Insights

log = logging.getLogger(__name__)
LEASE = "digest"
SETTLED = "/settled"


@dataclass(frozen=True)
class Digest:
    start: datetime
    end: datetime
    questions: int
    covered: int
    topics: tuple[Topic, ...]
    admin_url: str  # "" when no public URL is configured
    lang: Lang = "zh"

    def topic_url(self, topic: Topic) -> str:
        return f"{self.admin_url}#t-{topic.id}" if self.admin_url else ""


Sender = Callable[[Digest], Awaitable[str]]  # posts the digest; returns the message id


def build_digest(insights: Insights, *, days: int, topics: int, admin_url: str, now: datetime,
                 lang: Lang = "zh") -> Digest:
    scope = Scope(since=now - timedelta(days=days), until=now)
    report = insights.report(scope, ReportOptions(topics=topics, show_askers=insights.show_askers))
    base = admin_url.rstrip("/")
    return Digest(scope.since or now, now, report.totals["questions"], report.totals["covered"],
                  tuple(report.gap_topics), f"{base}/admin?days=30" if base else "", lang)


@dataclass
class DigestJob:
    """One scheduled run: lease, period claim, build, post to every sender, settle."""

    insights: Insights
    coordinator: Coordinator
    senders: Sequence[tuple[str, Sender]]
    days: int = 7
    topics: int = 8
    admin_url: str = ""
    period_seconds: float = 7 * 86400.0
    lease_seconds: float = 300.0
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    last: dict[str, Any] | None = None

    async def __call__(self) -> dict[str, str] | None:
        """The posted message ids by platform, or None when another replica has this period."""
        now = self.now().replace(second=0, microsecond=0)
        period = f"digest:{now.isoformat()}"
        c = self.coordinator
        if not await asyncio.to_thread(c.acquire_lease, LEASE, self.owner, self.lease_seconds):
            log.info("digest skipped: %s holds the digest lease", await asyncio.to_thread(c.lease_holder, LEASE))
            return None
        posted: dict[str, str] = {}
        claimed = False
        try:
            claimed = await asyncio.to_thread(c.claim, period, max(self.period_seconds, 86400.0))
            if not claimed:
                log.info("digest skipped: the digest of %s was posted already", now.isoformat())
                return None
            digest = await asyncio.to_thread(build_digest, self.insights, days=self.days, topics=self.topics,
                                             admin_url=self.admin_url, now=now)
            for name, send in self.senders:
                try:
                    posted[name] = await send(digest)
                except Exception as exc:  # noqa: BLE001 - one platform down must not stop the other
                    log.warning("digest not posted to %s: %s", name, exc)
            log.info("digest of %d gap topics posted to %s", len(digest.topics), ", ".join(posted) or "nowhere")
            self.last = {"at": now.isoformat(), "topics": len(digest.topics), "posted": sorted(posted)}
            return posted
        finally:
            await asyncio.to_thread(self._hand_back, claimed)

    def _hand_back(self, settle: bool) -> None:
        """Release the lease; after this period's run, keep it settled for most of the period."""
        try:
            self.coordinator.release_lease(LEASE, self.owner)
            if settle:
                self.coordinator.acquire_lease(LEASE, self.owner + SETTLED, 0.9 * self.period_seconds)
        except Exception as exc:  # noqa: BLE001 - it lapses by itself
            log.warning("could not hand back the digest lease: %s", exc)


class DigestSchedule:
    """Runs a DigestJob on a crontab schedule (APScheduler on the bot's event loop)."""

    def __init__(self, job: DigestJob, cron: str) -> None:
        from apscheduler.triggers.cron import CronTrigger

        from bot.syncing.scheduler import crontab_for_apscheduler

        self.job, self.cron = job, cron.strip()
        try:
            self.trigger = CronTrigger.from_crontab(crontab_for_apscheduler(self.cron))
        except ValueError as exc:
            raise ValueError(f"invalid wikibot.digest_cron {self.cron!r} (WIKIBOT_DIGEST_CRON): {exc}") from None
        first = self.trigger.get_next_fire_time(None, datetime.now(self.trigger.timezone))
        second = self.trigger.get_next_fire_time(first, first) if first else None
        if first and second:
            job.period_seconds = (second - first).total_seconds()
        self._scheduler: Any = None

    def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._scheduler = AsyncIOScheduler()
        self._scheduler.add_job(self.job, self.trigger, id="owners-digest", max_instances=1, coalesce=True,
                                misfire_grace_time=3600)
        self._scheduler.start()
        log.info("owners' digest scheduled (cron %s)", self.cron)

    def shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
