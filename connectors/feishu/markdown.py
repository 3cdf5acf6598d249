"""Markdown that a Feishu card (JSON 2.0 `markdown` element) can show safely.

Cards render CommonMark plus a few HTML-like tags (`<at id=all>`, `<font>`,
`<number_tag>`...). Text from the wiki or the model must never smuggle such a tag
in (an `<at id=all>` would page a whole group), images need Feishu image keys
(an image URL makes the whole card fail), links work only with http(s), and a
markdown element holds at most four tables. Everything else passes through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from bot.answering.models import Reference

_FENCE = re.compile(r"^(\s*)(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")
_LINK = re.compile(r"\[([^\]]*)\]\(\s*([^)\s]*)(?:\s+\"[^\"]*\")?\s*\)")
_MARKER = re.compile(r"\[(\d{1,2})\](?!\()")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
MAX_TABLES = 4
_PLAIN_SPECIAL = re.compile(r"[&<>*_~`\[\]#|]")


def safe_markdown(text: str) -> str:
    """Escape tags, drop images and non-http links, flatten tables beyond the fourth."""
    out: list[str] = []
    in_fence = False
    tables = 0
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
            continue
        if in_fence:
            out.append(line)
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if "|" in line and _TABLE_RULE.match(nxt) and not _TABLE_RULE.match(line):
            tables += 1
        if tables > MAX_TABLES and "|" in line:
            if _TABLE_RULE.match(line):
                continue
            line = " · ".join(c.strip() for c in line.strip().strip("|").split("|"))
        out.append(_safe_line(line))
    if in_fence:  # an unclosed fence (a streamed, half-written answer) would swallow the rest
        out.append("```")
    return "\n".join(out)


def _safe_line(line: str) -> str:
    return _outside_code(line, _safe_text)


def _outside_code(line: str, fn: Callable[[str], str]) -> str:
    """Apply `fn` to the parts of a line that are not inline code."""
    parts = _INLINE_CODE.split(line)  # [text, ticks, code, text, ticks, code, ..., text]
    out: list[str] = []
    for i in range(0, len(parts), 3):
        out.append(fn(parts[i]))
        if i + 2 < len(parts):
            out.append(parts[i + 1] + parts[i + 2] + parts[i + 1])
    return "".join(out)


def _safe_text(text: str) -> str:
    text = text.replace("<", "&#60;")
    text = _IMAGE.sub(lambda m: m.group(1), text)

    def link(m: re.Match[str]) -> str:
        label, url = m.group(1), m.group(2)
        return m.group(0) if url.lower().startswith(("http://", "https://")) else label

    return _LINK.sub(link, text)


def link_citations(text: str, references: Sequence[Reference]) -> str:
    """`[n]` markers become Feishu number badges linking to reference n (outside code)."""
    def badge(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(references):
            return m.group(0)
        url = references[n - 1].url
        if url.lower().startswith(("http://", "https://")):
            return f"<number_tag url='{_attr(url)}'>{n}</number_tag>"
        return f"<number_tag>{n}</number_tag>"

    out: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
        else:
            out.append(line if in_fence else _outside_code(line, lambda t: _MARKER.sub(badge, t)))
    return "\n".join(out)


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text)


def plain_line(text: str, limit: int = 0) -> str:
    """One line of text with markdown and tag characters neutralised (for titles, excerpts)."""
    text = re.sub(r"\s+", " ", text).strip()
    if limit and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    text = _PLAIN_SPECIAL.sub(lambda m: f"&#{ord(m.group(0))};", text)
    return text


def escape_tags(text: str) -> str:
    """Plain text for a markdown element: no tag can start, nothing else changes."""
    return text.replace("&", "&#38;").replace("<", "&#60;")


def _attr(url: str) -> str:
    return url.replace("'", "%27").replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
