"""The question log, kept in the index's engine: what people asked, when, and their feedback.

It feeds "Others asked" (similar earlier questions with their dates). A question is offered to
others only if every page its answer drew on is in a space the asking chat may see, so a
restricted space never leaks through its questions. The log exists only here (the wiki cannot
rebuild it), so a change of embedding model re-embeds the questions instead of dropping them.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from retrieval.embedders import Embedder
from retrieval.engines import CollectionSpec, Engine, PointData, Record

_NORMALIZE = re.compile(r"[\s\W_]+", re.UNICODE)


def _norm(text: str) -> str:
    return _NORMALIZE.sub("", text.lower())


@dataclass(frozen=True)
class AskedBefore:
    """An earlier question similar to the one being answered."""

    question: str
    asked_at: datetime


class QuestionLog:
    def __init__(self, engine: Engine, embedder: Embedder, prefix: str = "wikibot",
                 min_similarity: float = 0.0, lock: threading.RLock | None = None) -> None:
        self.engine = engine
        self.embedder = embedder
        self.collection = f"{prefix}_questions"
        self.min_similarity = min_similarity
        self._lock = lock or threading.RLock()
        self._ready = False

    def _spec(self) -> CollectionSpec:
        return CollectionSpec(dense_dim=self.embedder.dim)

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if self.engine.collection_exists(self.collection):
                if self.engine.spec(self.collection).dense_dim != self.embedder.dim:
                    self._reembed_all()
            else:
                self.engine.create_collection(self.collection, self._spec())
            self._ready = True

    def _reembed_all(self) -> None:
        """The embedding model changed: keep the log, with vectors of the new model."""
        records, offset = [], None
        while True:
            recs, offset = self.engine.scroll(self.collection, limit=500, offset=offset)
            records.extend(recs)
            if offset is None:
                break
        vectors: list[np.ndarray] = []
        for i in range(0, len(records), 64):  # embed everything before dropping anything
            vectors.extend(self.embedder.embed_passages([r.payload["question"] for r in records[i:i + 64]]))
        self.engine.delete_collection(self.collection)
        self.engine.create_collection(self.collection, self._spec())
        for i in range(0, len(records), 256):
            self.engine.upsert(self.collection, [PointData(r.id, r.payload, dense=v.tolist())
                                                 for r, v in zip(records[i:i + 256], vectors[i:i + 256])])

    def add(self, question: str, vector: np.ndarray, *, platform: str, chat_id: str, user_id: str,
            covered: bool, mode: str, page_ids: Sequence[str], spaces: Sequence[str],
            asked_at: datetime | None = None, grounding: float | None = None) -> str:
        """Log a question; `grounding` is the coverage decision's P(answerable), when there was one."""
        self._ensure()
        qid = str(uuid.uuid4())
        when = asked_at or datetime.now(timezone.utc)
        payload = {
            "question": question, "norm": _norm(question), "asked_at": when.isoformat(),
            "platform": platform, "chat_id": chat_id, "user_id": user_id, "covered": covered,
            "mode": mode, "page_ids": list(page_ids), "spaces": sorted(set(spaces)), "feedback": {},
        }
        if grounding is not None:
            payload["grounding"] = round(float(grounding), 4)
        with self._lock:
            self.engine.upsert(self.collection, [PointData(qid, payload, dense=vector.tolist())])
        return qid

    def similar(self, vector: np.ndarray, question: str, *, limit: int = 3,
                allowed_spaces: Sequence[str] | None = None,
                pages_ok: Callable[[Sequence[str]], bool] | None = None) -> list[AskedBefore]:
        """Up to `limit` earlier, different, answered questions close to this one; newest wording wins.

        `pages_ok(page_ids)`: False leaves out a question answered from pages the asker may not read."""
        self._ensure()
        with self._lock:
            points = self.engine.query(self.collection, dense=vector.tolist(), limit=limit * 8)
        own = _norm(question)
        seen: set[str] = {own}
        out: list[AskedBefore] = []
        allowed = set(allowed_spaces) if allowed_spaces is not None else None
        for p in points:
            pl = p.payload
            if p.score < self.min_similarity or not pl.get("covered") or pl.get("norm") in seen:
                continue
            if allowed is not None and not set(pl.get("spaces", [])) <= allowed:
                continue
            if pages_ok is not None and not pages_ok(list(pl.get("page_ids") or [])):
                continue
            seen.add(pl["norm"])
            out.append(AskedBefore(pl["question"], datetime.fromisoformat(pl["asked_at"])))
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
            recs = self.engine.retrieve(self.collection, [question_id])
            if not recs:
                return False
            feedback = dict(recs[0].payload.get("feedback") or {})
            feedback[user_id or "anonymous"] = value
            self.engine.set_payload(self.collection, [question_id], {"feedback": feedback})
        return True

    def get(self, question_id: str) -> dict[str, Any] | None:
        self._ensure()
        with self._lock:
            recs = self.engine.retrieve(self.collection, [question_id])
        return dict(recs[0].payload) if recs else None

    def scan(self, *, with_vectors: bool = False, batch: int = 1000) -> Iterator[Record]:
        """Every logged question (payload, and the question's vector if asked), in storage order."""
        self._ensure()
        offset = None
        while True:
            with self._lock:
                recs, offset = self.engine.scroll(self.collection, limit=batch, offset=offset,
                                                  with_vectors=with_vectors)
            yield from recs
            if offset is None:
                return

    def count(self) -> int:
        self._ensure()
        with self._lock:
            return self.engine.count(self.collection)


__all__ = ["QuestionLog", "AskedBefore"]
