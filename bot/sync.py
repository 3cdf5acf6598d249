"""Keep the index in step with a wiki: incremental, safe to stop, platform-neutral.

A source lists page stubs (cheap metadata) and fetches a page body on demand. A stub whose
fingerprint (title, place, URL, edit time) matches what the index recorded at the last sync costs
nothing: no download, no embedding. Everything else is fetched and upserted; the index re-embeds
only chunks whose text changed and replaces a page in a way that survives being killed at any
point (see `retrieval.index`), so the next run finishes what a killed one left. Pages the source
no longer lists are removed, but only when the listing completed: a listing that broke off part
way says nothing about what was deleted.

Sync code, CPU-heavy (embedding): the bot runs it in a worker thread (see `bot.scheduler`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from retrieval.index import PageState, WikiIndex
from retrieval.pages import Page

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (pages done, pages listed)


@dataclass(frozen=True)
class PageStub:
    """What a listing knows about a page without downloading it."""

    id: str
    title: str
    space: str = "default"
    path: tuple[str, ...] = ()
    url: str = ""
    edited_at: datetime | None = None
    version: str = ""  # the source's own change marker (e.g. edit time + object token)
    kind: str = "page"  # the source's type name (docx, sheet, ...)
    skip_reason: str = ""  # non-empty: listed but not indexable; reported, never fetched

    @property
    def fingerprint(self) -> str:
        """Changes whenever the page as indexed could have changed, body aside."""
        h = hashlib.sha256()
        for part in (self.id, self.title, self.space, "/".join(self.path), self.url, self.version,
                     self.edited_at.isoformat() if self.edited_at else ""):
            h.update(part.encode("utf-8") + b"\x00")
        return h.hexdigest()[:32]


@dataclass
class Listing:
    stubs: list[PageStub]
    complete: bool = True
    errors: list[str] = field(default_factory=list)


class WikiSource(Protocol):
    source_id: str  # stamped on every page it produces; only pages carrying it are ever removed

    def list_pages(self) -> Listing: ...

    def fetch_page(self, stub: PageStub) -> Page: ...


class SyncStopped(Exception):
    """The sync was asked to stop between two pages; the index stays consistent."""


@dataclass
class SyncReport:
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"page", "id", "type"}
    failed: list[dict[str, str]] = field(default_factory=list)  # {"page", "id", "reason"}
    chunks_embedded: int = 0
    full: bool = False
    listing_complete: bool = True
    errors: list[str] = field(default_factory=list)  # listing errors, or why the run stopped
    ok: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped_by_type"] = _count(s["type"] for s in self.skipped)
        return d


def sync_wiki(index: WikiIndex, source: WikiSource, *, full: bool = False, progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None, fetch_workers: int = 4,
              report: SyncReport | None = None) -> SyncReport:
    """One sync. Errors of single pages land in the report; index errors and stops propagate
    (a `report` passed in keeps the counts up to that point)."""
    t0 = time.perf_counter()
    report = report if report is not None else SyncReport()
    report.started_at, report.full = _now(), full
    if not full:
        index.ensure_collections()
    try:
        listing = source.list_pages()
    except Exception as exc:  # noqa: BLE001 - e.g. refused credentials: nothing known, nothing changes
        log.error("listing the wiki failed: %s", exc)
        listing = Listing([], complete=False, errors=[str(exc)])
    report.listing_complete, report.errors = listing.complete, list(listing.errors)
    if full:
        if not listing.complete:
            report.errors.append("--full rebuild not started: the listing is incomplete; the index is unchanged")
            return _finish(report, t0)
        index.ensure_collections(rebuild=True)
    states = index.page_states()
    total = len(listing.stubs)
    listed: set[str] = set()
    to_fetch: list[PageStub] = []
    for stub in listing.stubs:
        if stub.id in listed:
            continue
        if stub.skip_reason:
            report.skipped.append({"page": stub.title, "id": stub.id, "type": stub.skip_reason})
            continue
        listed.add(stub.id)
        if _unchanged(states.get(stub.id), stub, source.source_id):
            report.unchanged += 1
        else:
            to_fetch.append(stub)
    done = total - len(to_fetch)
    if progress:
        progress(done, total)

    pool = ThreadPoolExecutor(max_workers=max(1, fetch_workers), thread_name_prefix="wiki-fetch")
    pending: list[tuple[PageStub, Future[Page]]] = []
    queue = iter(to_fetch)
    try:
        _top_up(pool, pending, queue, source, fetch_workers * 2)
        while pending:
            if should_stop and should_stop():
                raise SyncStopped("stopped on request")
            stub, fut = pending.pop(0)
            _top_up(pool, pending, queue, source, fetch_workers * 2)
            try:
                page = fut.result()
            except Exception as exc:  # noqa: BLE001 - this page only; its indexed version stays
                log.warning("page %s (%s) failed: %s", stub.title, stub.id, exc)
                report.failed.append({"page": stub.title, "id": stub.id, "reason": str(exc)})
            else:
                _apply(index, page, stub, source.source_id, states.get(stub.id), report)
            done += 1
            if progress:
                progress(done, total)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a fetch sleeping out a rate limit must not hold us

    gone = [pid for pid, st in states.items() if st.meta.get("source") == source.source_id and pid not in listed]
    if listing.complete and gone and not listing.stubs:  # lost access, more likely than an emptied wiki
        report.errors.append(f"the wiki listed no pages at all, so none of the {len(gone)} indexed pages was "
                             "removed; if the wiki really is empty, run `wikibot sync --full`")
    elif listing.complete:
        report.removed = index.remove_pages(gone)
    elif not report.errors:
        report.errors.append("listing incomplete")
    return _finish(report, t0)


def _top_up(pool: ThreadPoolExecutor, pending: list[tuple[PageStub, Future[Page]]], queue: Any,
            source: WikiSource, depth: int) -> None:
    """Keep a few fetches in flight, so downloading overlaps with embedding."""
    while len(pending) < depth:
        stub = next(queue, None)
        if stub is None:
            return
        pending.append((stub, pool.submit(source.fetch_page, stub)))


def _unchanged(state: PageState | None, stub: PageStub, source_id: str) -> bool:
    return (state is not None and bool(state.rev) and not state.pending_ids
            and state.meta.get("source") == source_id and state.meta.get("listed") == stub.fingerprint)


def _apply(index: WikiIndex, page: Page, stub: PageStub, source_id: str, state: PageState | None,
           report: SyncReport) -> None:
    meta = {**page.source_meta, "source": source_id, "listed": stub.fingerprint}
    page = replace(page, source_meta=meta)
    result = index.upsert_page(page)
    report.chunks_embedded += result.chunks_embedded
    if result.changed:
        if state is not None and state.rev:
            report.updated += 1
        else:
            report.added += 1
        return
    report.unchanged += 1  # the index stored the new fingerprint without re-embedding


def _finish(report: SyncReport, t0: float) -> SyncReport:
    report.finished_at = _now()
    report.seconds = round(time.perf_counter() - t0, 3)
    report.ok = report.listing_complete and not report.failed and not report.errors
    return report


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


# ----- running it: recording, the bot's runner, the CLI command ------------------------------------
def run_and_record(index: WikiIndex, source: WikiSource, data_dir: Path, **kwargs: Any) -> SyncReport:
    """`sync_wiki`, then the report saved as `last_sync.json` and counted in the metrics, even when
    the run ended in an exception (which is re-raised)."""
    from bot import metrics

    t0 = time.perf_counter()
    report = SyncReport()
    try:
        sync_wiki(index, source, report=report, **kwargs)
    except BaseException as exc:
        report.errors.append(f"sync stopped: {exc!r}")
        save_report(_finish(report, t0), data_dir)
        metrics.SYNC_RUNS.labels(result="error").inc()
        raise
    save_report(report, data_dir)
    metrics.SYNC_RUNS.labels(result="ok" if report.ok else "partial").inc()
    for outcome in ("added", "updated", "unchanged", "removed"):
        metrics.SYNC_PAGES.labels(outcome=outcome).inc(getattr(report, outcome))
    metrics.SYNC_PAGES.labels(outcome="skipped").inc(len(report.skipped))
    metrics.SYNC_PAGES.labels(outcome="failed").inc(len(report.failed))
    return report


def save_report(report: SyncReport, data_dir: Path) -> None:
    path = Path(data_dir) / "last_sync.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def feishu_source(settings: Settings) -> WikiSource:
    """The configured Feishu wiki (imported here, at the composition root, to keep `bot` platform-free)."""
    if not settings.feishu.enabled:
        raise ValueError("The Feishu app is not configured: set FEISHU_APP_ID and FEISHU_APP_SECRET "
                         "(or [feishu] app_id / app_secret in the config file).")
    from connectors.feishu_wiki import FeishuWikiSource

    return FeishuWikiSource.from_settings(settings.feishu)


class SyncRunner:
    """What `wikibot serve` hands to `SyncScheduler`: each call is one recorded sync of the source;
    `stop()` ends a running one at the next page boundary (and any later call at once)."""

    def __init__(self, index: WikiIndex, source: WikiSource, data_dir: Path, **kwargs: Any) -> None:
        self.index, self.source, self.data_dir, self.kwargs = index, source, data_dir, kwargs
        self._stop = threading.Event()

    @classmethod
    def from_settings(cls, settings: Settings, index: WikiIndex) -> SyncRunner:
        return cls(index, feishu_source(settings), settings.data_dir)

    def __call__(self) -> SyncReport:
        return run_and_record(self.index, self.source, self.data_dir, should_stop=self._stop.is_set, **self.kwargs)

    def stop(self) -> None:
        self._stop.set()
