"""The wiki index in Qdrant: chunks with dense and sparse vectors, plus page records.

Embedded on disk by default, a Qdrant server by URL; same code path.

Replacing a page is safe to interrupt and never shows a mix of versions:
every chunk lists the page revisions (`revs`) it belongs to and search keeps a
chunk only if its page record's current revision is among them. The update
writes the new chunks (invisible), then flips the page record in one write,
then deletes what the old revision alone used. The page record notes the ids
in flight (`pending_ids`) before any chunk is written, so a sync killed at any
point can be finished or cleaned up by the next one.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from retrieval.chunker import Chunk, chunk_page
from retrieval.embedders import Embedder
from retrieval.pages import Page
from retrieval.sparse import document_vector

SCHEMA_VERSION = 1
_NS = uuid.UUID("6f1c2b1e-5d0c-4f5e-9a53-7f2d4e0b9c11")
SearchMode = Literal["hybrid", "dense", "sparse"]


class IndexError_(RuntimeError):
    """Base for index problems a user can act on."""


class IndexLockedError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    pass


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


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    page_id: str
    title: str
    url: str
    space: str
    path: tuple[str, ...]
    heading_path: tuple[str, ...]
    text: str
    start: int
    end: int
    score: float  # fused rank score (or the single retriever's score)
    dense_score: float = 0.0  # cosine similarity of query and passage
    lexical_coverage: float = 0.0  # share of the query's terms found in the passage


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


def _point_id(page_id: str, text: str, occurrence: int) -> str:
    return str(uuid.uuid5(_NS, f"{page_id}\x00{text}\x00{occurrence}"))


def _page_point_id(page_id: str) -> str:
    return str(uuid.uuid5(_NS, f"page\x00{page_id}"))


def open_client(data_dir: Path, url: str = "", api_key: str = "") -> Any:
    """A QdrantClient: the server at `url`, else the embedded index under `data_dir/qdrant`."""
    from qdrant_client import QdrantClient

    if url:
        return QdrantClient(url=url, api_key=api_key or None, timeout=30)
    path = Path(data_dir) / "qdrant"
    path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(path))
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise IndexLockedError(
                f"The embedded index at {path} is in use by another wikibot process (is `wikibot serve` "
                "running?). Let the running server do the sync (it syncs on its schedule), stop it first, "
                "or set QDRANT_URL to a Qdrant server so that several processes can share one index."
            ) from None
        raise


class WikiIndex:
    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        *,
        prefix: str = "wikibot",
        chunk_size: int = 480,
        chunk_overlap: int = 80,
        server_mode: bool = False,
        fusion: Literal["rrf", "dbsf"] = "rrf",
    ) -> None:
        self.client = client
        self.embedder = embedder
        self.chunks_collection = f"{prefix}_chunks"
        self.pages_collection = f"{prefix}_pages"
        self.meta_collection = f"{prefix}_meta"
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.server_mode = server_mode
        self.fusion = fusion
        self._lock = threading.RLock()

    # ----- lifecycle -------------------------------------------------------------------------
    def ensure_collections(self, rebuild: bool = False) -> None:
        """Create the collections, or check that the existing ones match the embedder."""
        from qdrant_client import models

        with self._lock:
            exists = self.client.collection_exists(self.chunks_collection)
            if exists and not rebuild:
                self._check_meta()
                return
            for name in (self.chunks_collection, self.pages_collection, self.meta_collection):
                if self.client.collection_exists(name):
                    self.client.delete_collection(name)
            self.client.create_collection(
                self.chunks_collection,
                vectors_config={"dense": models.VectorParams(size=self.embedder.dim,
                                                             distance=models.Distance.COSINE)},
                sparse_vectors_config={"sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            self.client.create_collection(self.pages_collection, vectors_config={})
            self.client.create_collection(self.meta_collection, vectors_config={})
            if self.server_mode:
                for key in ("page_id", "space"):
                    self.client.create_payload_index(self.chunks_collection, key,
                                                     models.PayloadSchemaType.KEYWORD)
            self.client.upsert(self.meta_collection, points=[models.PointStruct(
                id=0, vector={}, payload={"embedder": self.embedder.name, "dim": self.embedder.dim,
                                          "schema": SCHEMA_VERSION})])

    def _check_meta(self) -> None:
        recs = self.client.retrieve(self.meta_collection, [0]) if self.client.collection_exists(
            self.meta_collection) else []
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
            try:
                self.client.close()
            except Exception:  # pragma: no cover - closing twice
                pass

    # ----- reading state ---------------------------------------------------------------------
    def page_states(self) -> dict[str, PageState]:
        out: dict[str, PageState] = {}
        with self._lock:
            offset = None
            while True:
                recs, offset = self.client.scroll(self.pages_collection, limit=1000, offset=offset,
                                                  with_payload=True, with_vectors=False)
                for r in recs:
                    st = _state(r.payload)
                    out[st.page_id] = st
                if offset is None:
                    break
        return out

    def count_chunks(self) -> int:
        with self._lock:
            return int(self.client.count(self.chunks_collection, exact=True).count)

    def count_pages(self) -> int:
        with self._lock:
            return int(self.client.count(self.pages_collection, exact=True).count)

    # ----- writing -----------------------------------------------------------------------------
    def upsert_page(self, page: Page, force: bool = False) -> UpsertResult:
        """Make the index hold exactly this version of the page; embed only chunks whose text is new."""
        from qdrant_client import models

        rev = page.content_hash
        with self._lock:
            recs = self.client.retrieve(self.pages_collection, [_page_point_id(page.id)])
        old = _state(recs[0].payload) if recs else None
        if old is not None and old.rev == rev and not old.pending_ids and not force:
            edited = page.edited_at.isoformat() if page.edited_at else ""
            if old.meta != dict(page.source_meta) or old.edited_at != edited:
                self._write_page_record(page, rev, old.chunk_ids, [], old)  # e.g. a new edit time
            return UpsertResult(page.id, False, len(old.chunk_ids), 0)

        chunks = chunk_page(page, self.chunk_size, self.chunk_overlap)
        texts = [embed_text(page, c) for c in chunks]
        seen: dict[str, int] = {}
        new_ids: list[str] = []
        for t in texts:
            seen[t] = seen.get(t, 0) + 1
            new_ids.append(_point_id(page.id, t, seen[t]))
        old_ids = set(old.chunk_ids) if old else set()
        leftover = (set(old.pending_ids) if old else set()) - old_ids
        old_rev = old.rev if old else ""

        # 1. note what is in flight, keeping the current version visible
        pending = sorted(set(new_ids) | leftover)
        self._write_page_record(page, old_rev, sorted(old_ids), pending, old)

        # 2. write the new chunks; reuse vectors of chunks that already exist
        with self._lock:
            existing = {str(r.id) for r in self.client.retrieve(self.chunks_collection, new_ids,
                                                                 with_payload=False, with_vectors=False)}
        to_embed = [i for i, pid in enumerate(new_ids) if pid not in existing or force]
        dense = self.embedder.embed_passages([texts[i] for i in to_embed]) if to_embed else None
        revs = [r for r in (old_rev, rev) if r]
        points = []
        for j, i in enumerate(to_embed):
            assert dense is not None
            sv = document_vector(texts[i])
            points.append(models.PointStruct(
                id=new_ids[i],
                vector={"dense": dense[j].tolist(),
                        "sparse": models.SparseVector(indices=sv.indices, values=sv.values)},
                payload=self._chunk_payload(page, chunks[i], [rev]),
            ))
        with self._lock:
            if points:
                self.client.upsert(self.chunks_collection, points=points, wait=True)
            for i, pid in enumerate(new_ids):
                if pid in existing and not force:
                    self.client.set_payload(self.chunks_collection,
                                            payload=self._chunk_payload(page, chunks[i], revs),
                                            points=[pid], wait=True)

        # 3. flip: one write makes the new version the visible one
        self._write_page_record(page, rev, new_ids, sorted(leftover | (old_ids - set(new_ids))), old)

        # 4. clean up what only the old version (or an interrupted run) used
        stale = sorted((old_ids | leftover) - set(new_ids))
        with self._lock:
            if stale:
                self.client.delete(self.chunks_collection,
                                   points_selector=models.PointIdsList(points=stale), wait=True)
            reused = [pid for pid in new_ids if pid in existing]
            if reused and old_rev:
                self.client.set_payload(self.chunks_collection, payload={"revs": [rev]}, points=reused,
                                        wait=True)
        self._write_page_record(page, rev, new_ids, [], old)
        return UpsertResult(page.id, True, len(new_ids), len(to_embed))

    def remove_pages(self, page_ids: Iterable[str]) -> int:
        from qdrant_client import models

        removed = 0
        with self._lock:
            for page_id in page_ids:
                pid = _page_point_id(page_id)
                recs = self.client.retrieve(self.pages_collection, [pid])
                if not recs:
                    continue
                st = _state(recs[0].payload)
                ids = sorted(set(st.chunk_ids) | set(st.pending_ids))
                if ids:
                    self.client.delete(self.chunks_collection,
                                       points_selector=models.PointIdsList(points=ids), wait=True)
                self.client.delete(self.pages_collection, points_selector=models.PointIdsList(points=[pid]),
                                   wait=True)
                removed += 1
        return removed

    def _write_page_record(self, page: Page, rev: str, chunk_ids: Sequence[str], pending: Sequence[str],
                           old: PageState | None) -> None:
        from qdrant_client import models

        payload = {
            "page_id": page.id, "rev": rev, "space": page.space, "title": page.title,
            "url": page.url, "path": list(page.path),
            "edited_at": page.edited_at.isoformat() if page.edited_at else "",
            "chunk_ids": list(chunk_ids), "pending_ids": list(pending),
            "meta": dict(page.source_meta),
        }
        if rev != page.content_hash and old is not None:  # before the flip, keep describing the old version
            payload.update(space=old.space, title=old.title, edited_at=old.edited_at, meta=old.meta)
        with self._lock:
            self.client.upsert(self.pages_collection, points=[
                models.PointStruct(id=_page_point_id(page.id), vector={}, payload=payload)], wait=True)

    @staticmethod
    def _chunk_payload(page: Page, chunk: Chunk, revs: list[str]) -> dict[str, Any]:
        return {
            "page_id": page.id, "space": page.space, "title": page.title, "url": page.url,
            "path": list(page.path), "heading_path": list(chunk.heading_path), "text": chunk.text,
            "start": chunk.start, "end": chunk.end, "revs": revs,
            "edited_at": page.edited_at.isoformat() if page.edited_at else "",
        }

    # ----- searching ---------------------------------------------------------------------------
    def search(self, query: str, k: int = 6, spaces: Sequence[str] | None = None,
               mode: SearchMode = "hybrid", dense_vector: np.ndarray | None = None) -> list[Hit]:
        """The k best passages for a query, only from current page versions and allowed spaces."""
        from retrieval.search import search

        return search(self, query, k, spaces, mode, dense_vector)

    @property
    def lock(self) -> threading.RLock:
        """Held around every call on the shared client (the embedded client is not thread-safe)."""
        return self._lock


def _state(payload: dict[str, Any]) -> PageState:
    return PageState(
        page_id=payload["page_id"], rev=payload.get("rev", ""), space=payload.get("space", ""),
        title=payload.get("title", ""), edited_at=payload.get("edited_at", ""),
        chunk_ids=tuple(payload.get("chunk_ids", ())), pending_ids=tuple(payload.get("pending_ids", ())),
        meta=dict(payload.get("meta", {})),
    )


def parse_time(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
