"""Text commands understood on every platform: /ref, /help, /status; anything else is a question."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.answering.models import RefResult, Status
from bot.answering.texts import Lang, text

Kind = Literal["ask", "ref", "help", "status"]
_COMMAND = re.compile(r"^\s*[/／](ref|help|status|ask|帮助|状态)(?:\s+|$)(.*)\Z", re.S | re.I)
_ALIASES = {"帮助": "help", "状态": "status"}


@dataclass(frozen=True)
class Command:
    kind: Kind
    argument: str


def parse_command(message: str) -> Command:
    m = _COMMAND.match(message)
    if not m:
        return Command("ask", message.strip())
    name = _ALIASES.get(m.group(1), m.group(1).lower())
    return Command(name, m.group(2).strip())  # type: ignore[arg-type]


def format_status(status: Status, lang: Lang) -> str:
    last = status.last_sync or {}
    when = last.get("finished_at") or last.get("started_at") or text("status_never", lang)
    counts = text("status_sync_counts", lang, added=last.get("added", 0), updated=last.get("updated", 0),
                  removed=last.get("removed", 0), failed=_n(last.get("failed"))) if last else ""
    return "\n".join([
        text("status_index", lang, pages=status.pages, chunks=status.chunks, questions=status.questions),
        text("status_last_sync", lang, when=when) + counts,
        text("status_mode_llm" if status.llm else "status_mode_extractive", lang),
    ])


def _n(value: object) -> int:
    if isinstance(value, list):
        return len(value)
    return int(value or 0)  # type: ignore[call-overload]


def format_ref_markdown(result: RefResult) -> str:
    """Plain markdown rendering of a reference lookup (the CLI; adapters render their own)."""
    if not result.references:
        return text("no_refs", result.language, q=result.query)
    lines = []
    for i, r in enumerate(result.references, 1):
        where = " › ".join(r.heading_path) if r.heading_path else r.title
        lines.append(f"{i}. [{r.title}]({r.url}) — {where}\n   {r.excerpt.replace(chr(10), ' ')}")
    return "\n".join(lines)
