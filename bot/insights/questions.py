"""The logged questions as the insights read them, and who may see which.

Privacy: a question asked in a chat limited to some spaces (`[access] chat_spaces`) belongs to those
spaces only, so it is shown only in a view scoped to one of them; the all-spaces view counts it
without showing it. Askers' ids stay in `Asked` (distinct askers are counted) and are shown only when
the caller says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from retrieval.engines import Record
from retrieval.questions import QuestionLog

WEAK_GROUNDING = 0.5  # covered, but the coverage model's P(answerable) below this: weakly grounded


@dataclass(frozen=True)
class Asked:
    id: str
    question: str
    vector: np.ndarray | None
    platform: str
    chat_id: str
    user_id: str
    covered: bool
    mode: str
    page_ids: tuple[str, ...]  # cited pages when covered; the nearest pages offered when not
    spaces: tuple[str, ...]  # the spaces of those pages
    feedback: dict[str, str]  # user -> "up" | "down"
    asked_at: datetime
    grounding: float | None = None
    chat_spaces: tuple[str, ...] | None = None  # the asking chat's spaces; None: not limited

    @property
    def ups(self) -> int:
        return sum(1 for v in self.feedback.values() if v == "up")

    @property
    def downs(self) -> int:
        return sum(1 for v in self.feedback.values() if v == "down")

    @property
    def weak(self) -> bool:
        return self.covered and self.grounding is not None and self.grounding < WEAK_GROUNDING

    @property
    def gap_reasons(self) -> tuple[str, ...]:
        """Why this question shows a gap: "not_covered", "weak", "down" (empty: answered fine)."""
        out = []
        if not self.covered:
            out.append("not_covered")
        elif self.weak:
            out.append("weak")
        if self.downs:
            out.append("down")
        return tuple(out)


@dataclass(frozen=True)
class Scope:
    """What a view shows: a time window and one space, or every space (None)."""

    since: datetime | None = None
    until: datetime | None = None
    space: str | None = None

    def admits(self, q: Asked) -> bool:
        if self.since is not None and q.asked_at < self.since:
            return False
        if self.until is not None and q.asked_at >= self.until:
            return False
        return self.visible(q) and (self.space is None or self.space in q.spaces
                                    or (q.chat_spaces is not None and self.space in q.chat_spaces))

    def visible(self, q: Asked) -> bool:
        """The privacy rule alone: a space-limited chat's question only under one of its spaces."""
        if q.chat_spaces is None:
            return True
        return self.space is not None and self.space in q.chat_spaces


def parse_since(text: str, now: datetime | None = None) -> datetime | None:
    """`30d`, `12h`, `8w`, or an ISO date; empty: no limit."""
    text = text.strip()
    if not text:
        return None
    now = now or datetime.now(timezone.utc)
    unit = text[-1].lower()
    if unit in "hdw" and text[:-1].isdigit():
        n = int(text[:-1])
        return now - {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since wants e.g. 30d, 12h, 8w or a date like 2026-01-31, not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def load_questions(log: QuestionLog, chat_spaces: Callable[[str], Sequence[str] | None] = lambda _: None,
                   *, since: datetime | None = None, with_vectors: bool = True) -> list[Asked]:
    """Every logged question asked since `since`, with its vector and its chat's space limit."""
    return list(_read(log.scan(with_vectors=with_vectors), chat_spaces, since))


def _read(records: Iterable[Record], chat_spaces: Callable[[str], Sequence[str] | None],
          since: datetime | None) -> Iterator[Asked]:
    limits: dict[str, tuple[str, ...] | None] = {}
    for r in records:
        p = r.payload
        try:
            when = datetime.fromisoformat(p["asked_at"])
        except (KeyError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if since is not None and when < since:
            continue
        chat = str(p.get("chat_id") or "")
        if chat not in limits:
            lim = chat_spaces(chat) if chat else None
            limits[chat] = tuple(lim) if lim is not None else None
        g = p.get("grounding")
        yield Asked(
            id=str(r.id), question=str(p.get("question", "")),
            vector=np.asarray(r.dense, dtype=np.float32) if r.dense is not None else None,
            platform=str(p.get("platform") or "cli"), chat_id=chat, user_id=str(p.get("user_id") or ""),
            covered=bool(p.get("covered")), mode=str(p.get("mode") or ""),
            page_ids=tuple(p.get("page_ids") or ()), spaces=tuple(p.get("spaces") or ()),
            feedback=dict(p.get("feedback") or {}), asked_at=when,
            grounding=float(g) if isinstance(g, (int, float)) else None, chat_spaces=limits[chat])
