"""Answers without a language model: the best passages, quoted, with their sources."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[。！？；!?])|(?<=\.)\s")


def trim_excerpt(text: str, limit: int = 240) -> str:
    """A passage shortened to about `limit` characters, at a sentence end where possible."""
    text = re.sub(r"\n{3,}", "\n\n", text.strip())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    ends = [m.start() for m in _SENTENCE.finditer(cut) if m.start() > limit // 2]
    return (cut[:ends[-1]] if ends else cut).rstrip() + "…"


def quote_block(text: str, limit: int = 400) -> str:
    """A passage as a markdown quote; a passage with code stays a (closed) code block instead."""
    body = trim_excerpt(text, limit)
    body = re.sub(r"^#{1,6}\s+", "", body, flags=re.M)
    if "```" in body:
        if body.count("```") % 2:
            body = body.rstrip("…").rstrip() + "\n```"
        return body
    lines = [ln for ln in body.splitlines() if ln.strip()]
    return "\n".join("> " + ln for ln in lines)
