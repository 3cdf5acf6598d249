"""Hybrid search over the index: dense and lexical prefetch fused by the engine, current versions only.

The space filter goes into the engine (a payload index on `space`), on both engines. Search needs
only the few index attributes in `Searchable`, so this module does not import the index (the
index imports it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Literal, Protocol, Sequence

import numpy as np

from retrieval.embedders import Embedder
from retrieval.engines import Engine, Scored, Sparse
from retrieval.ids import page_point_id
from retrieval.sparse import SparseVector, query_vector, term_id, tokenize

SearchMode = Literal["hybrid", "dense", "sparse"]
NO_PRINCIPAL = "\x00"


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


class Searchable(Protocol):
    engine: Engine
    embedder: Embedder
    chunks_collection: str
    pages_collection: str
    fusion: Literal["rrf", "dbsf"]

    @property
    def lock(self) -> threading.RLock: ...


def search(index: Searchable, query: str, k: int = 6, spaces: Sequence[str] | None = None,
           mode: SearchMode = "hybrid", dense_vector: np.ndarray | None = None,
           sparse_vector: SparseVector | None = None, readers: Sequence[str] | None = None) -> list[Hit]:
    """The k best passages for a query, only from current page versions and allowed spaces.

    `readers`: the principals of whoever will read the answer; then a page restricted to some readers
    (a non-empty `readers` payload) is kept only if it names one of them. None: no such filter.

    `dense_vector` / `sparse_vector`: the query's vectors when the caller has them already.
    """
    query = query.strip()
    if not query:
        return []
    if spaces is not None and not spaces:
        return []
    qdense = None
    if mode != "sparse":
        qdense = dense_vector if dense_vector is not None else index.embedder.embed_query(query)
    qsparse = None
    if mode != "dense":
        qsparse = sparse_vector if sparse_vector is not None else query_vector(query)
    if mode == "sparse" and not qsparse.indices:  # type: ignore[union-attr]
        return []
    where = {"space": sorted(set(spaces))} if spaces is not None else None
    # no principal at all: only pages open to their space (a value no page lists stands for "none")
    empty_or = {"readers": sorted(set(readers)) or [NO_PRINCIPAL]} if readers is not None else None
    # a few more than k: chunks of a page version that is not (or no longer) current are dropped below
    n = max(k * 4, 24)
    with index.lock:
        points = index.engine.query(
            index.chunks_collection, dense=qdense.tolist() if qdense is not None else None,
            sparse=Sparse(qsparse.indices, qsparse.values) if qsparse is not None else None,
            limit=n, where=where, fusion=index.fusion, empty_or=empty_or)
    hits = _visible(index, points)[:k]
    return _annotate(index, hits, qdense, query)


def _visible(index: Searchable, points: list[Scored]) -> list[Hit]:
    page_ids = sorted({p.payload["page_id"] for p in points})
    if not page_ids:
        return []
    with index.lock:
        recs = index.engine.retrieve(index.pages_collection, [page_point_id(p) for p in page_ids])
    current = {r.payload["page_id"]: r.payload["rev"] for r in recs}
    hits = []
    for p in points:
        pl = p.payload
        if current.get(pl["page_id"]) not in pl.get("revs", ()):
            continue
        hits.append(Hit(
            chunk_id=str(p.id), page_id=pl["page_id"], title=pl["title"], url=pl["url"],
            space=pl["space"], path=tuple(pl.get("path", ())), heading_path=tuple(pl["heading_path"]),
            text=pl["text"], start=pl["start"], end=pl["end"], score=p.score,
        ))
    return hits


def _annotate(index: Searchable, hits: list[Hit], qdense: np.ndarray | None, query: str) -> list[Hit]:
    """Add the raw signals that tell a relevant passage from a merely nearest one.

    Lexical coverage is read off each hit's stored sparse vector (the terms of its title, headings
    and text) rather than by segmenting the hits again: jieba on six passages cost more than the
    engine's whole query.
    """
    if not hits:
        return hits
    with index.lock:
        recs = index.engine.retrieve(index.chunks_collection, [h.chunk_id for h in hits], with_payload=False,
                                     with_vectors=True)
    by_id = {str(r.id): r for r in recs}
    qterms = {term_id(t) for t in tokenize(query) if not t.startswith("~")}
    out = []
    for h in hits:
        r = by_id.get(h.chunk_id)
        ds = float(np.asarray(r.dense, dtype=np.float32) @ qdense) if qdense is not None and r is not None \
            and r.dense is not None else 0.0
        cov = 0.0
        if qterms:
            hterms = set(r.sparse.indices) if r is not None and r.sparse is not None else \
                {term_id(t) for t in tokenize(h.title + "\n" + h.text)}
            cov = len(qterms & hterms) / len(qterms)
        out.append(replace(h, dense_score=ds, lexical_coverage=cov))
    return out
