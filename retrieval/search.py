"""Hybrid search over the index: dense and lexical prefetch fused by Qdrant, current versions only.

Filters are ~10x dearer in embedded mode, so there the search over-fetches without
one and filters in Python, falling back to a filtered query only when the allowed
spaces are too rare among the candidates; with a server the filter goes into the
prefetch.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from retrieval.index import Hit, SearchMode, WikiIndex, _page_point_id
from retrieval.sparse import SparseVector, query_vector, tokenize


def search(index: WikiIndex, query: str, k: int = 6, spaces: Sequence[str] | None = None,
           mode: SearchMode = "hybrid", dense_vector: np.ndarray | None = None) -> list[Hit]:
    """The k best passages for a query, only from current page versions and allowed spaces."""
    query = query.strip()
    if not query:
        return []
    qdense = None
    if mode != "sparse":
        qdense = dense_vector if dense_vector is not None else index.embedder.embed_query(query)
    qsparse = query_vector(query) if mode != "dense" else None
    if mode == "sparse" and not qsparse.indices:  # type: ignore[union-attr]
        return []
    allowed = set(spaces) if spaces is not None else None
    if allowed is not None and not allowed:
        return []
    # Filters are ~10x dearer in embedded mode: over-fetch without one, and only fall back
    # to a filtered query when the allowed spaces are too rare among the candidates.
    use_filter = allowed is not None and index.server_mode
    n = max(k * 4, 24)
    hits = _query(index, qdense, qsparse, n, allowed if use_filter else None)
    hits = _visible(index, hits)
    if allowed is not None and not use_filter:
        kept = [h for h in hits if h.space in allowed]
        if len(kept) < k:
            kept = _visible(index, _query(index, qdense, qsparse, n, allowed))
        hits = kept
    hits = hits[:k]
    return _annotate(index, hits, qdense, query)

def _query(index: WikiIndex, qdense: np.ndarray | None, qsparse: SparseVector | None, n: int,
           allowed: set[str] | None) -> list[tuple[Any, float]]:
    from qdrant_client import models

    flt = None
    if allowed is not None:
        flt = models.Filter(must=[models.FieldCondition(key="space",
                                                        match=models.MatchAny(any=sorted(allowed)))])
    sparse_q = None
    if qsparse is not None and qsparse.indices:
        sparse_q = models.SparseVector(indices=qsparse.indices, values=qsparse.values)
    with index.lock:
        if qdense is not None and sparse_q is not None:
            res = index.client.query_points(
                index.chunks_collection,
                prefetch=[
                    models.Prefetch(query=qdense.tolist(), using="dense", limit=n, filter=flt),
                    models.Prefetch(query=sparse_q, using="sparse", limit=n, filter=flt),
                ],
                query=models.FusionQuery(fusion=models.Fusion.RRF if index.fusion == "rrf"
                                         else models.Fusion.DBSF),
                limit=n, with_payload=True,
            )
        elif qdense is not None:
            res = index.client.query_points(index.chunks_collection, query=qdense.tolist(), using="dense",
                                           query_filter=flt, limit=n, with_payload=True)
        elif sparse_q is not None:
            res = index.client.query_points(index.chunks_collection, query=sparse_q, using="sparse",
                                           query_filter=flt, limit=n, with_payload=True)
        else:
            return []
    return [(p, float(p.score)) for p in res.points]

def _visible(index: WikiIndex, points: list[tuple[Any, float]]) -> list[Hit]:
    page_ids = sorted({p.payload["page_id"] for p, _ in points})
    if not page_ids:
        return []
    with index.lock:
        recs = index.client.retrieve(index.pages_collection, [_page_point_id(p) for p in page_ids])
    current = {r.payload["page_id"]: r.payload["rev"] for r in recs}
    hits = []
    for p, score in points:
        pl = p.payload
        if current.get(pl["page_id"]) not in pl.get("revs", ()):
            continue
        hits.append(Hit(
            chunk_id=str(p.id), page_id=pl["page_id"], title=pl["title"], url=pl["url"],
            space=pl["space"], path=tuple(pl.get("path", ())), heading_path=tuple(pl["heading_path"]),
            text=pl["text"], start=pl["start"], end=pl["end"], score=score,
        ))
    return hits

def _annotate(index: WikiIndex, hits: list[Hit], qdense: np.ndarray | None, query: str) -> list[Hit]:
    """Add the raw signals that tell a relevant passage from a merely nearest one."""
    if not hits:
        return hits
    dense_scores = [0.0] * len(hits)
    if qdense is not None:
        with index.lock:
            recs = index.client.retrieve(index.chunks_collection, [h.chunk_id for h in hits],
                                        with_payload=False, with_vectors=["dense"])
        vecs = {str(r.id): np.asarray(r.vector["dense"], dtype=np.float32) for r in recs}
        dense_scores = [float(vecs[h.chunk_id] @ qdense) if h.chunk_id in vecs else 0.0 for h in hits]
    qterms = {t for t in tokenize(query) if not t.startswith("~")}
    out = []
    for h, ds in zip(hits, dense_scores):
        cov = 0.0
        if qterms:
            hterms = set(tokenize(h.title + "\n" + h.text))
            cov = len(qterms & hterms) / len(qterms)
        out.append(Hit(**{**h.__dict__, "dense_score": ds, "lexical_coverage": cov}))
    return out


