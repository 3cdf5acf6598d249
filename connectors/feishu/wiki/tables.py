"""Rows of a table (a sheet, a Bitable table, an Excel sheet) as markdown the chunker keeps readable.

A whole sheet becomes one list item per row, each value with its column name ("列名: 值"), so a
chunk cut anywhere in a long table still says what every value is. A small table embedded in a page
stays a markdown table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

SMALL_TABLE_CHARS = 1200  # an embedded table up to this size stays a markdown table
_SPACE = re.compile(r"\s+")


def clean(value: Any) -> str:
    """One cell as one line of text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _SPACE.sub(" ", str(value)).strip()


def column_name(i: int) -> str:
    """0 → A, 25 → Z, 26 → AA: the spreadsheet's own column letters."""
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def split_header(rows: Sequence[Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """The first non-empty row is the header (an empty header cell gets its column letter)."""
    rows = [list(r) for r in rows]
    while rows and not any(rows[0]):
        rows.pop(0)
    if not rows:
        return [], []
    width = max(len(r) for r in rows)
    header = [h or column_name(i) for i, h in enumerate(rows[0] + [""] * (width - len(rows[0])))]
    return header, [r + [""] * (width - len(r)) for r in rows[1:] if any(r)]


def records(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """One list item per row: "- 列名: 值；列名: 值" (empty values left out)."""
    lines = []
    for row in rows:
        pairs = [f"{h}: {v}" for h, v in zip(header, row) if v]
        if pairs:
            lines.append("- " + "；".join(pairs))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join(["---"] * len(header)) + "|", *(line(r) for r in rows)])


def render(rows: Sequence[Sequence[str]], *, embedded: bool = False) -> str:
    """Rows (header first) as records; an embedded table small enough stays a markdown table."""
    header, body = split_header(rows)
    if not header:
        return ""
    if not body:
        return "- " + "；".join(h for h in header if h)
    if embedded:
        table = markdown_table(header, body)
        if len(table) <= SMALL_TABLE_CHARS:
            return table
    return records(header, body)
