"""A Qdrant server (or cluster) through qdrant-client: where a team goes when one machine is not enough.

The same interface as the embedded engine. Tests stand qdrant-client's local mode
(`QdrantClient(path=...)`) in for a server, since no Qdrant server runs on our machines.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal, Sequence

from retrieval.engines import (CollectionSpec, Compaction, EmptyOrFilter, Fusion, KeywordFilter, PointData, PointId,
                               Record, Scored, Sparse, norm_id)

log = logging.getLogger(__name__)


class ServerEngine:
    kind: Literal["embedded", "server"] = "server"

    def __init__(self, client: Any, location: str = "") -> None:
        from qdrant_client import models

        self.client = client
        self.m = models
        self.location = location or "a Qdrant server"

    @classmethod
    def connect(cls, url: str, api_key: str = "") -> "ServerEngine":
        from qdrant_client import QdrantClient

        return cls(QdrantClient(url=url, api_key=api_key or None, timeout=30), url)

    # ----- collections ---------------------------------------------------------------------------
    def collection_exists(self, name: str) -> bool:
        return bool(self.client.collection_exists(name))

    def collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def create_collection(self, name: str, spec: CollectionSpec) -> None:
        m = self.m
        vectors = {"dense": m.VectorParams(size=spec.dense_dim, distance=m.Distance.COSINE)} if spec.dense_dim else {}
        sparse = {"sparse": m.SparseVectorParams(modifier=m.Modifier.IDF)} if spec.sparse else None
        self.client.create_collection(name, vectors_config=vectors, sparse_vectors_config=sparse)
        with warnings.catch_warnings():  # local mode (tests) says payload indexes do nothing there
            warnings.simplefilter("ignore")
            for key in spec.keyword_indexes:
                self.client.create_payload_index(name, key, m.PayloadSchemaType.KEYWORD, wait=True)

    def delete_collection(self, name: str) -> None:
        if self.client.collection_exists(name):
            self.client.delete_collection(name)

    def spec(self, name: str) -> CollectionSpec:
        info = self.client.get_collection(name)
        vectors = info.config.params.vectors
        dense = vectors.get("dense") if isinstance(vectors, dict) else None
        sparse = info.config.params.sparse_vectors or {}
        return CollectionSpec(dense_dim=int(dense.size) if dense is not None else None, sparse="sparse" in sparse,
                              keyword_indexes=tuple(sorted((info.payload_schema or {}).keys())))

    # ----- points --------------------------------------------------------------------------------
    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        if not points:
            return
        m = self.m
        pts = []
        for p in points:
            vec: dict[str, Any] = {}
            if p.dense is not None:
                vec["dense"] = list(p.dense)
            if p.sparse is not None:
                vec["sparse"] = m.SparseVector(indices=list(p.sparse.indices), values=list(p.sparse.values))
            pts.append(m.PointStruct(id=p.id, vector=vec, payload=p.payload))
        self.client.upsert(name, points=pts, wait=True)

    def retrieve(self, name: str, ids: Sequence[PointId], *, with_payload: bool = True,
                 with_vectors: bool = False) -> list[Record]:
        if not ids:
            return []
        recs = self.client.retrieve(name, list(ids), with_payload=with_payload, with_vectors=with_vectors)
        return [_record(r) for r in recs]

    def set_payload(self, name: str, ids: Sequence[PointId], payload: dict[str, Any]) -> None:
        if ids:
            self.client.set_payload(name, payload=payload, points=list(ids), wait=True)

    def delete(self, name: str, ids: Sequence[PointId]) -> None:
        if ids:
            self.client.delete(name, points_selector=self.m.PointIdsList(points=list(ids)), wait=True)

    def scroll(self, name: str, *, limit: int = 1000, offset: PointId | None = None,
               with_vectors: bool = False) -> tuple[list[Record], PointId | None]:
        recs, nxt = self.client.scroll(name, limit=limit, offset=offset, with_payload=True, with_vectors=with_vectors)
        return [_record(r) for r in recs], (None if nxt is None else norm_id(nxt))

    def count(self, name: str) -> int:
        return int(self.client.count(name, exact=True).count)

    def query(self, name: str, *, dense: Sequence[float] | None = None, sparse: Sparse | None = None,
              limit: int = 10, where: KeywordFilter | None = None, fusion: Fusion = "rrf",
              empty_or: EmptyOrFilter | None = None) -> list[Scored]:
        m = self.m
        flt = None
        must: list[Any] = [m.FieldCondition(key=k, match=m.MatchAny(any=list(v)))
                           for k, v in (where or {}).items()]
        must += [m.Filter(should=[m.IsEmptyCondition(is_empty=m.PayloadField(key=k)),
                                  m.FieldCondition(key=k, match=m.MatchAny(any=list(v)))])
                 for k, v in (empty_or or {}).items()]
        if must:
            flt = m.Filter(must=must)
        sides: list[tuple[Any, str]] = []
        if dense is not None:
            sides.append((list(dense), "dense"))
        if sparse is not None and sparse.indices:
            sides.append((m.SparseVector(indices=list(sparse.indices), values=list(sparse.values)), "sparse"))
        if not sides:
            return []
        if len(sides) == 1:
            res = self.client.query_points(name, query=sides[0][0], using=sides[0][1], query_filter=flt, limit=limit,
                                           with_payload=True)
        else:
            res = self.client.query_points(
                name, prefetch=[m.Prefetch(query=q, using=u, limit=limit, filter=flt) for q, u in sides],
                query=m.FusionQuery(fusion=m.Fusion.RRF if fusion == "rrf" else m.Fusion.DBSF),
                limit=limit, with_payload=True)
        return [Scored(norm_id(p.id), float(p.score), dict(p.payload or {})) for p in res.points]

    def compact(self, name: str) -> Compaction | None:
        """Nothing to do: a Qdrant server runs its own optimizers."""
        return None

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # pragma: no cover - closing twice
            pass


def _record(r: Any) -> Record:
    vec = r.vector if isinstance(r.vector, dict) else {}
    sp = vec.get("sparse")
    return Record(norm_id(r.id), dict(r.payload or {}),
                  dense=list(vec["dense"]) if vec.get("dense") is not None else None,
                  sparse=Sparse(list(sp.indices), [float(x) for x in sp.values]) if sp is not None else None)


__all__ = ["ServerEngine"]
