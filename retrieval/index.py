"""The wiki index: chunks with dense and sparse vectors, plus page records, on an `Engine`.

The embedded Qdrant engine by default, a Qdrant server by URL (`retrieval.engines`); this module
does not know which one runs.

Replacing a page is safe to interrupt and never shows a mix of versions:
every chunk lists the page revisions (`revs`) it belongs to and search keeps a
chunk only if its page record's current revision is among them. The update
writes the new chunks (invisible), then flips the page record in one write,
then deletes what the old revision alone used. The page record notes the ids
in flight (`pending_ids`) before any chunk is written, so a sync killed at any
point can be finished or cleaned up by the next one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from retrieval.chunker import Chunk, chunk_page
from retrieval.embedders import Embedder
from retrieval.engines import CollectionSpec, Compaction, Engine, PointData, Sparse, open_engine
from retrieval.errors import IndexError_, IndexLockedError, IndexMismatchError, LegacyIndexError
from retrieval.ids import META_POINT_ID, chunk_point_id, page_point_id
from retrieval.pages import Page
from retrieval.search import Hit, SearchMode, search
from retrieval.sparse import document_vector

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
COMPACT_CHECK_EVERY = 512  # chunk points written between looks at the write segment's size
KEYWORD_INDEXES = ("page_id", "space", "readers")  # filters run in the engine, on payload indexes


@dataclass(frozen=True)
class PageState:
    page_id: str
    rev: str
    space: str
    title: str
    edited_at: str
    chunk_ids: tuple[str, ...]
    pending_ids: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpsertResult:
    page_id: str
    changed: bool
    chunks_total: int
    chunks_embedded: int


def embed_text(page: Page, chunk: Chunk) -> str:
    """What the dense model sees: the passage with its page title and headings for context."""
    heads = [h for h in chunk.heading_path if h != page.title]
    return " > ".join([page.title, *heads]) + "\n" + chunk.text


class WikiIndex:
    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        *,
        prefix: str = "wikibot",
        chunk_size: int = 480,
        chunk_overlap: int = 80,
        fusion: Literal["rrf", "dbsf"] = "rrf",
    ) -> None:
        self.engine = engine
        self.embedder = embedder
        self.prefix = prefix
        self.chunks_collection = f"{prefix}_chunks"
        self.pages_collection = f"{prefix}_pages"
        self.meta_collection = f"{prefix}_meta"
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.fusion = fusion
        self._lock = threading.RLock()
        self._written = 0  # chunk points written since the write segment was last looked at

    @property
    def collections(self) -> tuple[str, ...]:
        """The collections this index owns (the question log adds `{prefix}_questions`)."""
        return (self.chunks_collection, self.pages_collection, self.meta_collection)

    # ----- lifecycle -------------------------------------------------------------------------
    def ensure_collections(self, rebuild: bool = False) -> None:
        """Create the collections, or check that the existing ones match the embedder."""
        with self._lock:
            exists = self.engine.collection_exists(self.chunks_collection)
            if exists and not rebuild:
                self._check_meta()
                return
            for name in self.collections:
                self.engine.delete_collection(name)
            # meta last: a build killed half-way has no meta and is rebuilt rather than trusted
            self.engine.create_collection(self.chunks_collection, CollectionSpec(
                dense_dim=self.embedder.dim, sparse=True, keyword_indexes=KEYWORD_INDEXES))
            self.engine.create_collection(self.pages_collection, CollectionSpec(keyword_indexes=KEYWORD_INDEXES))
            self.engine.create_collection(self.meta_collection, CollectionSpec())
            self.engine.upsert(self.meta_collection, [PointData(META_POINT_ID, {
                "embedder": self.embedder.name, "dim": self.embedder.dim, "schema": SCHEMA_VERSION})])

    def _check_meta(self) -> None:
        recs = self.engine.retrieve(self.meta_collection, [META_POINT_ID]) \
            if self.engine.collection_exists(self.meta_collection) else []
        meta = recs[0].payload if recs else {}
        if meta.get("embedder") != self.embedder.name or meta.get("dim") != self.embedder.dim \
                or meta.get("schema") != SCHEMA_VERSION:
            raise IndexMismatchError(
                f"The index was built with embedding model {meta.get('embedder')!r} "
                f"(dim {meta.get('dim')}, schema {meta.get('schema')}), but the configured model is "
                f"{self.embedder.name!r} (dim {self.embedder.dim}, schema {SCHEMA_VERSION}). "
                "Vectors of two models cannot be mixed: rebuild the index with "
                "`wikibot index PATH --rebuild` or `wikibot sync --full`."
            )

    def close(self) -> None:
        with self._lock:
            self.engine.close()

    # ----- reading state ---------------------------------------------------------------------
    def page_states(self) -> dict[str, PageState]:
        out: dict[str, PageState] = {}
        with self._lock:
            offset = None
            while True:
                recs, offset = self.engine.scroll(self.pages_collection, limit=1000, offset=offset)
                for r in recs:
                    st = _state(r.payload)
                    out[st.page_id] = st
                if offset is None:
                    break
        return out

    def count_chunks(self) -> int:
        with self._lock:
            return self.engine.count(self.chunks_collection)

    def count_pages(self) -> int:
        with self._lock:
            return self.engine.count(self.pages_collection)

    def current_revisions(self, page_ids: Iterable[str]) -> dict[str, str]:
        """page id -> its visible revision, for the pages that have a record."""
        ids = sorted(set(page_ids))
        if not ids:
            return {}
        with self._lock:
            recs = self.engine.retrieve(self.pages_collection, [page_point_id(p) for p in ids])
        return {r.payload["page_id"]: r.payload.get("rev", "") for r in recs}

    # ----- writing -----------------------------------------------------------------------------
    def upsert_page(self, page: Page, force: bool = False) -> UpsertResult:
        """Make the index hold exactly this version of the page; embed only chunks whose text is new."""
        rev = page.content_hash
        with self._lock:
            recs = self.engine.retrieve(self.pages_collection, [page_point_id(page.id)])
        old = _state(recs[0].payload) if recs else None
        if old is not None and old.rev == rev and not old.pending_ids and not force:
            edited = page.edited_at.isoformat() if page.edited_at else ""
            if old.readers != tuple(page.readers):  # who may read it changed: the chunks say so first
                with self._lock:
                    self.engine.set_payload(self.chunks_collection, list(old.chunk_ids),
                                            {"readers": list(page.readers)})
            if (old.meta != dict(page.source_meta) or old.edited_at != edited
                    or old.readers != tuple(page.readers)):
                self._write_page_record(page, rev, old.chunk_ids, [], old)  # e.g. a new edit time
            return UpsertResult(page.id, False, len(old.chunk_ids), 0)

        chunks = chunk_page(page, self.chunk_size, self.chunk_overlap)
        texts = [embed_text(page, c) for c in chunks]
        new_ids = _chunk_ids(page.id, texts)
        old_ids = set(old.chunk_ids) if old else set()
        leftover = (set(old.pending_ids) if old else set()) - old_ids
        old_rev = old.rev if old else ""

        if old is not None and old.readers != tuple(page.readers) and old.chunk_ids:
            with self._lock:  # who may read it changed: the visible version says so at once
                self.engine.set_payload(self.chunks_collection, list(old.chunk_ids),
                                        {"readers": list(page.readers)})

        # 1. note what is in flight, keeping the current version visible
        pending = sorted(set(new_ids) | leftover)
        self._write_page_record(page, old_rev, sorted(old_ids), pending, old)

        # 2. write the new chunks (invisible until the flip); reuse vectors of chunks that already exist
        existing, embedded = self._write_chunks(page, chunks, texts, new_ids, [r for r in (old_rev, rev) if r],
                                                force)

        # 3. flip: one write makes the new version the visible one
        self._write_page_record(page, rev, new_ids, sorted(leftover | (old_ids - set(new_ids))), old)

        # 4. clean up what only the old version (or an interrupted run) used
        stale = sorted((old_ids | leftover) - set(new_ids))
        with self._lock:
            self.engine.delete(self.chunks_collection, stale)
            reused = [pid for pid in new_ids if pid in existing]
            if reused and old_rev:
                self.engine.set_payload(self.chunks_collection, reused, {"revs": [rev]})
        self._write_page_record(page, rev, new_ids, [], old)
        if self._written >= COMPACT_CHECK_EVERY:
            self.compact()
        return UpsertResult(page.id, True, len(new_ids), embedded)

    def compact(self) -> Compaction | None:
        """Let the engine finish the chunks' write segment if it has grown (embedded engine; a page
        boundary, no lock held: searches go on meanwhile). A failed compaction leaves the index as it was."""
        self._written = 0
        try:
            return self.engine.compact(self.chunks_collection)
        except RuntimeError as exc:
            log.warning("%s; the index is unchanged and the next sync tries again", exc)
            return None

    def _write_chunks(self, page: Page, chunks: Sequence[Chunk], texts: Sequence[str], ids: Sequence[str],
                      revs: list[str], force: bool) -> tuple[set[str], int]:
        """Embed and write chunks the index lacks; tag the ones it has with both revisions.

        Returns the ids that already existed and how many chunks were embedded.
        """
        with self._lock:
            existing = {str(r.id) for r in self.engine.retrieve(self.chunks_collection, list(ids), with_payload=False)}
        to_embed = [i for i, pid in enumerate(ids) if pid not in existing or force]
        dense = self.embedder.embed_passages([texts[i] for i in to_embed]) if to_embed else []
        points = []
        for vector, i in zip(dense, to_embed):
            sv = document_vector(texts[i])
            points.append(PointData(ids[i], self._chunk_payload(page, chunks[i], [revs[-1]]),
                                    dense=vector.tolist(), sparse=Sparse(sv.indices, sv.values)))
        with self._lock:
            self.engine.upsert(self.chunks_collection, points)
            self._written += len(points)
            for i, pid in enumerate(ids):
                if pid in existing and not force:
                    self.engine.set_payload(self.chunks_collection, [pid], self._chunk_payload(page, chunks[i], revs))
        return existing, len(to_embed)

    def remove_pages(self, page_ids: Iterable[str]) -> int:
        removed = 0
        with self._lock:
            for page_id in page_ids:
                pid = page_point_id(page_id)
                recs = self.engine.retrieve(self.pages_collection, [pid])
                if not recs:
                    continue
                st = _state(recs[0].payload)
                self.engine.delete(self.chunks_collection, sorted(set(st.chunk_ids) | set(st.pending_ids)))
                self.engine.delete(self.pages_collection, [pid])
                removed += 1
        return removed

    def _write_page_record(self, page: Page, rev: str, chunk_ids: Sequence[str], pending: Sequence[str],
                           old: PageState | None) -> None:
        payload = {
            "page_id": page.id, "rev": rev, "space": page.space, "title": page.title,
            "url": page.url, "path": list(page.path),
            "edited_at": page.edited_at.isoformat() if page.edited_at else "",
            "chunk_ids": list(chunk_ids), "pending_ids": list(pending),
            "meta": dict(page.source_meta), "readers": list(page.readers),
        }
        if rev != page.content_hash and old is not None:  # before the flip, keep describing the old version
            payload.update(space=old.space, title=old.title, edited_at=old.edited_at, meta=old.meta)
        with self._lock:
            self.engine.upsert(self.pages_collection, [PointData(page_point_id(page.id), payload)])

    @staticmethod
    def _chunk_payload(page: Page, chunk: Chunk, revs: list[str]) -> dict[str, Any]:
        return {
            "page_id": page.id, "space": page.space, "title": page.title, "url": page.url,
            "path": list(page.path), "heading_path": list(chunk.heading_path), "text": chunk.text,
            "start": chunk.start, "end": chunk.end, "revs": revs,
            "edited_at": page.edited_at.isoformat() if page.edited_at else "",
            "readers": list(page.readers),
        }

    def pages_readable(self, page_ids: Sequence[str], readers: Sequence[str]) -> bool:
        """True when every one of these pages is open to its space or names one of `readers` (a page
        no longer indexed does not count as readable: nothing says who may read it)."""
        ids = sorted(set(page_ids))
        if not ids:
            return True
        with self._lock:
            recs = self.engine.retrieve(self.pages_collection, [page_point_id(p) for p in ids])
        wanted = set(readers)
        return len(recs) == len(ids) and all(
            not r.payload.get("readers") or wanted & set(r.payload["readers"]) for r in recs)

    # ----- searching ---------------------------------------------------------------------------
    def search(self, query: str, k: int = 6, spaces: Sequence[str] | None = None,
               mode: SearchMode = "hybrid", dense_vector: np.ndarray | None = None,
               readers: Sequence[str] | None = None) -> list[Hit]:
        """The k best passages for a query, only from current page versions and allowed spaces (and,
        with `readers`, only pages open to their whole space or naming one of these readers)."""
        return search(self, query, k, spaces, mode, dense_vector, readers=readers)

    @property
    def lock(self) -> threading.RLock:
        """Held around each multi-step use of the engine, so a reader never sees half a step."""
        return self._lock


def open_index(data_dir: Any, embedder: Embedder, *, url: str = "", api_key: str = "", prefix: str = "wikibot",
               chunk_size: int = 480, chunk_overlap: int = 80, fusion: Literal["rrf", "dbsf"] = "rrf",
               rebuild: bool = False, check: bool = True, compact_above_mb: float = 64.0) -> WikiIndex:
    """The index on the configured engine (embedded under `data_dir`, or the server at `url`), checked.

    `check=False` skips creating/checking the collections, for a caller that rebuilds them itself.
    """
    index = WikiIndex(open_engine(data_dir, url, api_key, compact_above_mb), embedder, prefix=prefix, chunk_size=chunk_size,
                      chunk_overlap=chunk_overlap, fusion=fusion)
    try:
        if check or rebuild:
            index.ensure_collections(rebuild=rebuild)
    except BaseException:
        index.close()
        raise
    return index


def _state(payload: dict[str, Any]) -> PageState:
    return PageState(
        page_id=payload["page_id"], rev=payload.get("rev", ""), space=payload.get("space", ""),
        title=payload.get("title", ""), edited_at=payload.get("edited_at", ""),
        chunk_ids=tuple(payload.get("chunk_ids", ())), pending_ids=tuple(payload.get("pending_ids", ())),
        meta=dict(payload.get("meta", {})), readers=tuple(payload.get("readers", ())),
    )


def _chunk_ids(page_id: str, texts: Sequence[str]) -> list[str]:
    """Point ids from the page and each chunk's text (a repeated text counted), so re-indexing is idempotent."""
    seen: dict[str, int] = {}
    ids = []
    for t in texts:
        seen[t] = seen.get(t, 0) + 1
        ids.append(chunk_point_id(page_id, t, seen[t]))
    return ids


__all__ = ["WikiIndex", "Hit", "PageState", "UpsertResult", "SearchMode", "open_index", "embed_text",
           "IndexError_", "IndexLockedError", "IndexMismatchError", "LegacyIndexError"]
