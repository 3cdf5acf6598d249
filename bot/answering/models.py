"""Platform-neutral request and reply models: one question in, one reply out.

Adapters translate a platform event into a `Question` and render a `Reply`;
the answering pipeline never formats for a platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.answering.texts import Lang

Mode = Literal["llm", "extractive"]


@dataclass(frozen=True)
class Turn:
    """An earlier exchange in the same thread, oldest first."""

    question: str
    answer: str


@dataclass(frozen=True)
class Question:
    text: str
    platform: str = "cli"  # "feishu", "slack", "cli"
    user_id: str = ""
    chat_id: str = ""
    thread_id: str = ""  # the root message of the conversation thread, if any
    message_id: str = ""
    allowed_spaces: tuple[str, ...] | None = None  # None: every synced space
    # asker mode: the readers' principals; pages restricted below their space are used only if they
    # name one. None: no per-page filter (chat mode)
    allowed_readers: tuple[str, ...] | None = None
    history: tuple[Turn, ...] = ()


@dataclass(frozen=True)
class Reference:
    """A source page the answer drew on, with the excerpt used."""

    page_id: str
    title: str
    url: str
    excerpt: str
    heading_path: tuple[str, ...] = ()
    space: str = ""


@dataclass(frozen=True)
class Citation:
    """A span of the answer text [start, end) backed by references (indexes into Reply.references)."""

    start: int
    end: int
    reference_indexes: tuple[int, ...]
    cited_text: str = ""


@dataclass(frozen=True)
class OtherAsked:
    question: str
    asked_at: datetime


@dataclass(frozen=True)
class Reply:
    answer: str  # markdown, with [n] markers pointing at references (1-based)
    covered: bool  # False when the wiki has nothing on the question
    mode: Mode
    references: tuple[Reference, ...] = ()
    citations: tuple[Citation, ...] = ()
    others_asked: tuple[OtherAsked, ...] = ()
    notice: str = ""
    language: Lang = "zh"
    question_id: str = ""  # for feedback
    degraded_reason: str = ""  # why an LLM answer fell back to extractive, if it did

    def to_json(self) -> dict[str, object]:
        return {
            "answer": self.answer,
            "covered": self.covered,
            "mode": self.mode,
            "language": self.language,
            "question_id": self.question_id,
            "notice": self.notice,
            "degraded_reason": self.degraded_reason,
            "references": [
                {"page_id": r.page_id, "title": r.title, "url": r.url, "excerpt": r.excerpt,
                 "heading_path": list(r.heading_path), "space": r.space}
                for r in self.references
            ],
            "citations": [
                {"start": c.start, "end": c.end, "references": list(c.reference_indexes),
                 "cited_text": c.cited_text}
                for c in self.citations
            ],
            "others_asked": [
                {"question": o.question, "asked_at": o.asked_at.isoformat()} for o in self.others_asked
            ],
        }


@dataclass(frozen=True)
class RefResult:
    """The reference lookup (`/ref words`): matching pages and passages, nothing generated."""

    query: str
    references: tuple[Reference, ...] = field(default_factory=tuple)
    language: Lang = "zh"


@dataclass(frozen=True)
class Status:
    """What `/status` reports: the index, the question log, the answer mode and the last sync."""

    pages: int
    chunks: int
    questions: int
    embedder: str
    llm: bool
    last_sync: dict[str, Any] | None
