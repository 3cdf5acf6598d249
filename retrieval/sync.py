"""Keep the index in step with a wiki source: incremental, safe to stop, platform-neutral.

A source lists page stubs (cheap metadata) and fetches a page body on demand. A stub whose
fingerprint (title, place, URL, edit time) matches what the index recorded at the last sync costs
nothing: no download, no embedding. Everything else is fetched and upserted; the index re-embeds
only chunks whose text changed and replaces a page in a way that survives being killed at any
point (see `retrieval.index`), so the next run finishes what a killed one left. Pages the source
no longer lists are removed, but only when the listing completed: a listing that broke off part
way says nothing about what was deleted.

A page the source cannot index as it is now (`PageSkipped`: a file too big or unreadable) is reported
as skipped with its reason and noted, with its fingerprint, in the index's meta collection, so the
next run neither downloads it again nor reports it as new work until its stub changes.

CPU-heavy (embedding): the bot runs it in a worker thread.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from retrieval.engines import PointData
from retrieval.ids import skip_point_id
from retrieval.index import PageState, WikiIndex
from retrieval.pages import Page
from retrieval.sources import Listing, PageSkipped, PageStub, WikiSource

log = logging.getLogger(__name__)
SyncProgress = Callable[[int, int], None]  # (pages done, pages listed)


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
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"page", "id", "type", "reason"}
    failed: list[dict[str, str]] = field(default_factory=list)  # {"page", "id", "reason"}
    chunks_embedded: int = 0
    # per kind of page (docx, sheet, bitable, file, ...): listed, added, updated, unchanged, skipped, failed
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    full: bool = False
    listing_complete: bool = True
    errors: list[str] = field(default_factory=list)  # listing errors, or why the run stopped
    ok: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped_by_type"] = dict(Counter(s["type"] for s in self.skipped))
        return d

    def count(self, kind: str, outcome: str) -> None:
        per = self.by_kind.setdefault(kind, dict.fromkeys(
            ("listed", "added", "updated", "unchanged", "skipped", "failed"), 0))
        per[outcome] += 1

    def skip(self, stub: PageStub, reason: str) -> None:
        self.skipped.append({"page": stub.title, "id": stub.id, "type": stub.kind, "reason": reason})
        self.count(stub.kind, "skipped")

    def finish(self, t0: float) -> SyncReport:
        self.finished_at = _now()
        self.seconds = round(time.perf_counter() - t0, 3)
        self.ok = self.listing_complete and not self.failed and not self.errors
        return self


def sync_wiki(index: WikiIndex, source: WikiSource, *, full: bool = False, progress: SyncProgress | None = None,
              should_stop: Callable[[], bool] | None = None, fetch_workers: int = 4,
              report: SyncReport | None = None) -> SyncReport:
    """One sync. Errors of single pages land in the report; index errors and stops propagate
    (a `report` passed in keeps the counts up to that point)."""
    t0 = time.perf_counter()
    report = report if report is not None else SyncReport()
    report.started_at, report.full = _now(), full
    if not full:
        index.ensure_collections()
    listing = _list(source, report)
    if full:
        if not listing.complete:
            report.errors.append("--full rebuild not started: the listing is incomplete; the index is unchanged")
            return report.finish(t0)
        index.ensure_collections(rebuild=True)
    states = index.page_states()
    listing = _refine(source, listing, states)
    skips = _SkipNotes(index, source.source_id)
    listed, to_fetch = _plan(listing, states, skips, source.source_id, report)
    total = len(listing.stubs)
    _fetch_and_apply(index, source, to_fetch, states, skips, report, done=total - len(to_fetch), total=total,
                     progress=progress, should_stop=should_stop, workers=fetch_workers)
    _remove_unlisted(index, listing, states, listed, source.source_id, report)
    if listing.complete:
        skips.forget_unlisted({s.id for s in listing.stubs})
    index.compact()
    return report.finish(t0)


def _list(source: WikiSource, report: SyncReport) -> Listing:
    try:
        listing = source.list_pages()
    except Exception as exc:  # noqa: BLE001 - e.g. refused credentials: nothing known, nothing changes
        log.error("listing the wiki failed: %s", exc)
        listing = Listing([], complete=False, errors=[str(exc)])
    report.listing_complete, report.errors = listing.complete, list(listing.errors)
    return listing


def _refine(source: WikiSource, listing: Listing, states: dict[str, PageState]) -> Listing:
    """A source may add to its stubs' versions what only the last fetch knew (`refine_versions`: e.g.
    the edit times of objects embedded in a page), given the metadata each page was indexed with."""
    refine = getattr(source, "refine_versions", None)
    if refine is None or not listing.stubs:
        return listing
    try:
        return replace(listing, stubs=refine(listing.stubs, {pid: st.meta for pid, st in states.items()}))
    except Exception as exc:  # noqa: BLE001 - the listed versions stay: more pages fetched, none stale
        log.warning("refining the listed versions failed: %s", exc)
        return listing


def _plan(listing: Listing, states: dict[str, PageState], skips: _SkipNotes, source_id: str,
          report: SyncReport) -> tuple[set[str], list[PageStub]]:
    """Which listed pages need fetching; skipped and unchanged ones are counted here."""
    listed: set[str] = set()
    to_fetch: list[PageStub] = []
    seen: set[str] = set()
    for stub in listing.stubs:
        if stub.id in seen:
            continue
        seen.add(stub.id)
        if stub.skip_reason:
            report.skip(stub, stub.skip_reason)
            continue
        if (reason := skips.still(stub)) is not None:
            report.skip(stub, reason)  # skipped before and unchanged since: not downloaded again
            continue
        listed.add(stub.id)
        report.count(stub.kind, "listed")
        if _unchanged(states.get(stub.id), stub, source_id):
            report.unchanged += 1
            report.count(stub.kind, "unchanged")
        else:
            to_fetch.append(stub)
    return listed, to_fetch


def _fetch_and_apply(index: WikiIndex, source: WikiSource, to_fetch: list[PageStub],
                     states: dict[str, PageState], skips: _SkipNotes, report: SyncReport, *, done: int, total: int,
                     progress: SyncProgress | None, should_stop: Callable[[], bool] | None,
                     workers: int) -> None:
    """Download a few pages ahead while embedding the current one; one page's failure is its own."""
    if progress:
        progress(done, total)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="wiki-fetch")
    pending: list[tuple[PageStub, Future[Page]]] = []
    queue = iter(to_fetch)
    try:
        _top_up(pool, pending, queue, source, workers * 2)
        while pending:
            if should_stop and should_stop():
                raise SyncStopped("stopped on request")
            stub, fut = pending.pop(0)
            _top_up(pool, pending, queue, source, workers * 2)
            try:
                page = fut.result()
            except PageSkipped as exc:  # not indexable as it is now: reported, noted, any old version dropped
                log.info("page %s (%s) skipped: %s", stub.title, stub.id, exc.reason)
                report.skip(stub, exc.reason)
                report.by_kind[stub.kind]["listed"] -= 1  # counted as listed when planned; it is not indexable
                skips.note(stub, exc.reason)
                index.remove_pages([stub.id])
            except Exception as exc:  # noqa: BLE001 - this page only; its indexed version stays
                log.warning("page %s (%s) failed: %s", stub.title, stub.id, exc)
                report.failed.append({"page": stub.title, "id": stub.id, "reason": str(exc)})
                report.count(stub.kind, "failed")
            else:
                _apply(index, page, stub, source.source_id, states.get(stub.id), report)
                skips.forget([stub.id])
            done += 1
            if progress:
                progress(done, total)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a fetch sleeping out a rate limit must not hold us


def _remove_unlisted(index: WikiIndex, listing: Listing, states: dict[str, PageState], listed: set[str],
                     source_id: str, report: SyncReport) -> None:
    gone = [pid for pid, st in states.items() if st.meta.get("source") == source_id and pid not in listed]
    if listing.complete and gone and not listing.stubs:  # lost access, more likely than an emptied wiki
        report.errors.append(f"the wiki listed no pages at all, so none of the {len(gone)} indexed pages was "
                             "removed; if the wiki really is empty, run `wikibot sync --full`")
    elif listing.complete:
        report.removed = index.remove_pages(gone)
    elif not report.errors:
        report.errors.append("listing incomplete")


def _top_up(pool: ThreadPoolExecutor, pending: list[tuple[PageStub, Future[Page]]], queue: Iterator[PageStub],
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
    version = page.source_meta.get("version")  # the source may know more at fetch than at listing
    listed = replace(stub, version=version).fingerprint if version else stub.fingerprint
    meta = {**page.source_meta, "source": source_id, "listed": listed}
    result = index.upsert_page(replace(page, source_meta=meta))
    report.chunks_embedded += result.chunks_embedded
    if not result.changed:
        report.unchanged += 1  # the index stored the new fingerprint without re-embedding
        report.count(stub.kind, "unchanged")
    elif state is not None and state.rev:
        report.updated += 1
        report.count(stub.kind, "updated")
    else:
        report.added += 1
        report.count(stub.kind, "added")


class _SkipNotes:
    """Pages skipped at fetch time, noted in the index's meta collection with their stub's fingerprint."""

    def __init__(self, index: WikiIndex, source_id: str) -> None:
        self.index, self.source_id = index, source_id
        self.notes: dict[str, dict[str, Any]] = {}
        with index.lock:
            offset = None
            while True:
                recs, offset = index.engine.scroll(index.meta_collection, limit=1000, offset=offset)
                for r in recs:
                    if r.payload.get("skipped_page") and r.payload.get("source") == source_id:
                        self.notes[str(r.payload["skipped_page"])] = r.payload
                if offset is None:
                    break

    def still(self, stub: PageStub) -> str | None:
        """The reason it was skipped, if it was and has not changed since."""
        note = self.notes.get(stub.id)
        return str(note.get("reason", "")) if note and note.get("listed") == stub.fingerprint else None

    def note(self, stub: PageStub, reason: str) -> None:
        payload = {"skipped_page": stub.id, "source": self.source_id, "listed": stub.fingerprint,
                   "kind": stub.kind, "reason": reason}
        with self.index.lock:
            self.index.engine.upsert(self.index.meta_collection, [PointData(skip_point_id(stub.id), payload)])
        self.notes[stub.id] = payload

    def forget(self, page_ids: list[str]) -> None:
        gone = [p for p in page_ids if p in self.notes]
        if gone:
            with self.index.lock:
                self.index.engine.delete(self.index.meta_collection, [skip_point_id(p) for p in gone])
            for p in gone:
                del self.notes[p]

    def forget_unlisted(self, listed: set[str]) -> None:
        self.forget([p for p in self.notes if p not in listed])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
