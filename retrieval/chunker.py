"""Split a markdown page into passages that respect its structure.

A chunk never crosses a heading; inside a section it packs whole blocks
(paragraphs, list items, code blocks, tables) up to `size` characters, and
splits a block that is too big at sentence ends (。！？；.!?), table rows or
code lines, in that order of preference. Each chunk is an exact span of the
page body, so its offsets point back into the page.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from retrieval.pages import Page

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_ROW = re.compile(r"^\s*\|")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s)|(?<=\n)")


@dataclass(frozen=True)
class Chunk:
    page_id: str
    index: int
    text: str
    heading_path: tuple[str, ...]
    start: int
    end: int

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:24]


@dataclass
class _Unit:
    start: int
    end: int
    section: int


@dataclass
class _Block:
    start: int
    end: int
    kind: str  # heading | para | list | code | table


def _lines_with_offsets(text: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append((pos, line))
        pos += len(line)
    return out


def _blocks(body: str) -> list[tuple[_Block, tuple[str, ...]]]:
    """Blocks of the body with the heading path each sits under."""
    lines = _lines_with_offsets(body)
    stack: list[tuple[int, str]] = []
    blocks: list[tuple[_Block, tuple[str, ...]]] = []
    i = 0

    def path() -> tuple[str, ...]:
        return tuple(t for _, t in stack)

    while i < len(lines):
        start, line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        if _FENCE.match(line):
            fence = _FENCE.match(line).group(1)  # type: ignore[union-attr]
            j = i + 1
            while j < len(lines) and not lines[j][1].strip().startswith(fence):
                j += 1
            j = min(j + 1, len(lines))
            end = lines[j - 1][0] + len(lines[j - 1][1])
            blocks.append((_Block(start, end, "code"), path()))
            i = j
            continue
        h = _HEADING.match(line)
        if h:
            level, title = len(h.group(1)), h.group(2).strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            blocks.append((_Block(start, start + len(line), "heading"), path()))
            i += 1
            continue
        kind = "table" if _TABLE_ROW.match(line) else "list" if _LIST_ITEM.match(line) else "para"
        j = i + 1
        while j < len(lines):
            nxt = lines[j][1]
            if not nxt.strip() or _FENCE.match(nxt) or _HEADING.match(nxt):
                break
            if kind == "table" and not _TABLE_ROW.match(nxt):
                break
            if kind != "table" and _TABLE_ROW.match(nxt):
                break
            if kind == "list" and _LIST_ITEM.match(nxt):
                break  # each list item is its own block
            if kind == "para" and _LIST_ITEM.match(nxt):
                break
            j += 1
        end = lines[j - 1][0] + len(lines[j - 1][1])
        blocks.append((_Block(start, end, kind), path()))
        i = j
    return blocks


def _split_block(body: str, block: _Block, size: int) -> list[tuple[int, int]]:
    """Split a block longer than `size` into spans no longer than `size`."""
    text = body[block.start:block.end]
    if len(text) <= size:
        return [(block.start, block.end)]
    if block.kind in ("code", "table"):
        cuts = [m.end() for m in re.finditer(r"\n", text)]
    else:
        cuts = [m.start() for m in _SENTENCE_END.finditer(text) if 0 < m.start() < len(text)]
    pieces: list[tuple[int, int]] = []
    prev = 0
    for c in sorted(set(cuts)) + [len(text)]:
        if c <= prev:
            continue
        pieces.append((prev, c))
        prev = c
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        while b - a > size:  # a sentence or line longer than a chunk: cut it hard
            out.append((block.start + a, block.start + a + size))
            a += size
        out.append((block.start + a, block.start + b))
    return out


def chunk_page(page: Page, size: int = 480, overlap: int = 80) -> list[Chunk]:
    body = page.body
    units: list[_Unit] = []
    paths: list[tuple[str, ...]] = []
    for block, hpath in _blocks(body):
        if block.kind == "heading" or not paths or paths[-1] != hpath:
            if not paths or paths[-1] != hpath or block.kind == "heading":
                paths.append(hpath)
        section = len(paths) - 1
        for a, b in _split_block(body, block, size):
            units.append(_Unit(a, b, section))

    chunks: list[Chunk] = []
    current: list[_Unit] = []
    prev_units: list[_Unit] = []

    def flush() -> None:
        nonlocal current, prev_units
        if not current:
            return
        start, end = current[0].start, current[-1].end
        text = body[start:end].strip()
        if text and not _only_heading(text):
            lead = len(body[start:end]) - len(body[start:end].lstrip())
            chunks.append(
                Chunk(page.id, len(chunks), text, paths[current[0].section], start + lead, start + lead + len(text))
            )
        prev_units = current
        current = []

    for unit in units:
        if current and (unit.section != current[-1].section or unit.end - current[0].start > size):
            same_section = unit.section == current[-1].section
            flush()
            if same_section and overlap > 0:
                tail = [u for u in prev_units if prev_units[-1].end - u.start <= overlap]
                if tail and unit.end - tail[0].start <= size:
                    current = list(tail)
        current.append(unit)
    flush()
    return _merge_heading_only(chunks)


def _only_heading(text: str) -> bool:
    return all(_HEADING.match(line) for line in text.splitlines() if line.strip())


def _merge_heading_only(chunks: list[Chunk]) -> list[Chunk]:
    return [Chunk(c.page_id, i, c.text, c.heading_path, c.start, c.end) for i, c in enumerate(chunks)]
