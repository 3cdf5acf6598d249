"""Cutting mrkdwn into pieces that fit Block Kit's limits without breaking what Slack parses.

A cut never falls inside a `<url|label>` link or a `&amp;`-style escape, and a
code block cut in two is closed before the cut and reopened after it, so each
piece renders on its own.
"""

from __future__ import annotations

import re

_FENCE = "```"
_HEADING = re.compile(r"^\*[^*]+\*\s*$")  # what a markdown heading became
_TAG = re.compile(r"<[^<>]*>|&(?:amp|lt|gt);")


def split_mrkdwn(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at paragraph, then line, then word boundaries."""
    if limit < 20:
        raise ValueError("limit too small to split mrkdwn safely")
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    in_fence = False
    budget = limit - len(_FENCE) - 1  # room to close a code block the cut falls into

    def flush() -> None:
        nonlocal current, size
        if current:
            body = "\n".join(current)
            pieces.append(body + ("\n" + _FENCE if in_fence else ""))
        current = [_FENCE] if in_fence else []
        size = len(_FENCE) + 1 if in_fence else 0

    for line in text.split("\n"):
        for part in _hard_cut(line, budget - len(_FENCE) - 1):
            added = len(part) + (1 if current else 0)
            if current and size + added > budget:
                carry = [] if in_fence else _paragraph_tail(current)
                del current[len(current) - len(carry):]
                flush()
                if carry:
                    current = carry
                    size = sum(len(x) for x in carry) + len(carry) - 1
                added = len(part) + (1 if current else 0)
            current.append(part)
            size += added
        if line.strip().startswith(_FENCE):
            in_fence = not in_fence
    if current and any(x.strip() for x in current if x != _FENCE):
        pieces.append("\n".join(current) + ("\n" + _FENCE if in_fence else ""))
    return [p for p in pieces if p.strip()]


def _paragraph_tail(lines: list[str]) -> list[str]:
    """The lines after the last paragraph break, to start the next piece with.

    So a piece ends at a paragraph break rather than between a heading and its text; but only
    if what stays is at least a third of the piece, so pieces do not get small.
    """
    total = sum(len(x) + 1 for x in lines)
    head = total
    for j in range(len(lines) - 1, 0, -1):
        head -= len(lines[j]) + 1
        if head < total // 3:
            break
        if not lines[j].strip() and not _HEADING.match(lines[j - 1]):
            tail = lines[j + 1:]
            return [] if any(x.strip().startswith(_FENCE) for x in tail) else tail
    return []


def _hard_cut(line: str, limit: int) -> list[str]:
    """One over-long line as several, cut at a space where possible, never inside a link or escape."""
    out: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", limit // 2, limit)
        if cut <= 0:
            cut = limit
        for m in _TAG.finditer(line, max(0, cut - 300), min(len(line), cut + 300)):
            if m.start() < cut < m.end():
                cut = m.start() if m.start() > 0 else m.end()
                break
        cut = min(cut, limit) or limit
        out.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    out.append(line)
    return out


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """At most `limit` characters, cut like `split_mrkdwn` would cut."""
    if len(text) <= limit:
        return text
    return split_mrkdwn(text, limit - len(ellipsis) - 1)[0] + ellipsis
