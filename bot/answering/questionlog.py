"""The question log, kept in Qdrant: what people asked, when, and their feedback.

It feeds "Others asked" (similar earlier questions with their dates). A question
is shown to others only if every page its answer drew on is in a space the
asking chat may see, so a restricted space never leaks through its questions.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np

from bot.answering.models import OtherAsked
from retrieval.embedders import Embedder

_NORMALIZE = re.compile(r"[\s\W_]+", re.UNICODE)


def _norm(text: str) -> str:
    return _NORMALIZE.sub("", text.lower())


class QuestionLog:
    def __init__(self, client: Any, embedder: Embedder, prefix: str = "wikibot",
                 min_similarity: float = 0.0, lock: threading.RLock | None = None) -> None:
        self.client = client
        self.embedder = embedder
        self.collection = f"{prefix}_questions"
        self.min_similarity = min_similarity
        self._lock = lock or threading.RLock()
        self._ready = False

    def _ensure(self) -> None:
        if self._ready:
            return
        from qdrant_client import models

        with self._lock:
            if self.client.collection_exists(self.collection):
                info = self.client.get_collection(self.collection)
                vectors = info.config.params.vectors
                size = vectors["dense"].size if isinstance(vectors, dict) else None
                if size != self.embedder.dim:
                    self._reembed_all()
            else:
                self.client.create_collection(self.collection, vectors_config={
                    "dense": models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE)})
            self._ready = True

    def _reembed_all(self) -> None:
        """The embedding model changed: keep the log, with vectors of the new model."""
        from qdrant_client import models

        records, offset = [], None
        while True:
            recs, offset = self.client.scroll(self.collection, limit=500, offset=offset, with_payload=True)
            records.extend(recs)
            if offset is None:
                break
        self.client.delete_collection(self.collection)
        self.client.create_collection(self.collection, vectors_config={
            "dense": models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE)})
        for i in range(0, len(records), 64):
            batch = records[i:i + 64]
            vecs = self.embedder.embed_passages([r.payload["question"] for r in batch])
            self.client.upsert(self.collection, points=[
                models.PointStruct(id=r.id, vector={"dense": v.tolist()}, payload=r.payload)
                for r, v in zip(batch, vecs)])

    def add(self, question: str, vector: np.ndarray, *, platform: str, chat_id: str, user_id: str,
            covered: bool, mode: str, page_ids: Sequence[str], spaces: Sequence[str],
            asked_at: datetime | None = None) -> str:
        from qdrant_client import models

        self._ensure()
        qid = str(uuid.uuid4())
        when = asked_at or datetime.now(timezone.utc)
        payload = {
            "question": question, "norm": _norm(question), "asked_at": when.isoformat(),
            "platform": platform, "chat_id": chat_id, "user_id": user_id, "covered": covered,
            "mode": mode, "page_ids": list(page_ids), "spaces": sorted(set(spaces)), "feedback": {},
        }
        with self._lock:
            self.client.upsert(self.collection, points=[
                models.PointStruct(id=qid, vector={"dense": vector.tolist()}, payload=payload)])
        return qid

    def similar(self, vector: np.ndarray, question: str, *, limit: int = 3,
                allowed_spaces: Sequence[str] | None = None) -> list[OtherAsked]:
        """Up to `limit` earlier, different, answered questions close to this one; newest wording wins."""
        self._ensure()
        with self._lock:
            res = self.client.query_points(self.collection, query=vector.tolist(), using="dense",
                                           limit=limit * 8, with_payload=True)
        own = _norm(question)
        seen: set[str] = {own}
        out: list[OtherAsked] = []
        allowed = set(allowed_spaces) if allowed_spaces is not None else None
        for p in res.points:
            pl = p.payload or {}
            if p.score < self.min_similarity or not pl.get("covered") or pl.get("norm") in seen:
                continue
            if allowed is not None and not set(pl.get("spaces", [])) <= allowed:
                continue
            seen.add(pl["norm"])
            out.append(OtherAsked(pl["question"], datetime.fromisoformat(pl["asked_at"])))
            if len(out) == limit:
                break
        return out

    def record_feedback(self, question_id: str, user_id: str, value: str) -> bool:
        """Store 'up' or 'down' from a user for a logged question; False if the question is unknown."""
        self._ensure()
        try:
            uuid.UUID(question_id)
        except ValueError:
            return False
        with self._lock:
            recs = self.client.retrieve(self.collection, [question_id], with_payload=True)
            if not recs:
                return False
            feedback = dict(recs[0].payload.get("feedback") or {})
            feedback[user_id or "anonymous"] = value
            self.client.set_payload(self.collection, payload={"feedback": feedback}, points=[question_id])
        return True

    def get(self, question_id: str) -> dict[str, Any] | None:
        self._ensure()
        with self._lock:
            recs = self.client.retrieve(self.collection, [question_id], with_payload=True)
        return dict(recs[0].payload) if recs else None

    def count(self) -> int:
        self._ensure()
        with self._lock:
            return int(self.client.count(self.collection, exact=True).count)
