"""The insights over one open index: its question log read under the access rules, reports built.

Shared by `wikibot gaps`, the owners' page (`/admin`, `wikibot admin`) and the digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from bot.insights.questions import Asked, Scope, load_questions
from bot.insights.report import GapReport, ReportOptions, build_report, index_pages
from retrieval.index import WikiIndex
from retrieval.questions import QuestionLog

SYNC_HISTORY = "sync_history.jsonl"


@dataclass
class Insights:
    index: WikiIndex
    log: QuestionLog
    chat_spaces: Callable[[str], Sequence[str] | None]
    data_dir: Path
    show_askers: bool = False

    @classmethod
    def open(cls, index: WikiIndex, *, prefix: str, chat_spaces: Callable[[str], Sequence[str] | None],
             data_dir: Path, show_askers: bool = False) -> "Insights":
        return cls(index, QuestionLog(index.engine, index.embedder, prefix, lock=index.lock), chat_spaces,
                   Path(data_dir), show_askers)

    def questions(self, since: datetime | None = None) -> list[Asked]:
        return load_questions(self.log, self.chat_spaces, since=since)

    def report(self, scope: Scope, options: ReportOptions | None = None,
               now: datetime | None = None) -> GapReport:
        options = options or ReportOptions(show_askers=self.show_askers)
        return build_report(self.questions(scope.since), self.index, scope, options, now=now)

    def spaces(self) -> list[str]:
        """Every space with pages in the index or named in the access rules (for the space picker)."""
        return sorted({p.space for p in index_pages(self.index, None).values() if p.space})

    def index_size(self) -> dict[str, int]:
        return {"pages": self.index.count_pages(), "chunks": self.index.count_chunks(),
                "questions": self.log.count()}

    def syncs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last sync reports, newest first (`sync_history.jsonl`, else `last_sync.json`)."""
        path = self.data_dir / SYNC_HISTORY
        rows: list[dict[str, Any]] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
        if not rows:
            last = self.data_dir / "last_sync.json"
            try:
                rows = [json.loads(last.read_text(encoding="utf-8"))] if last.exists() else []
            except (OSError, ValueError):
                rows = []
        return list(reversed(rows))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
