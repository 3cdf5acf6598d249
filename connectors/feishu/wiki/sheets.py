"""Feishu spreadsheets as markdown: every sheet a section, every row its values with their column names.

The sheet list comes from sheets v3 (`sheets/query`: id, title, index, hidden, grid size,
`resource_type`); values from sheets v2 (`values/<sheetId>!A1:<col><row>`), read a block of rows at a
time so a big sheet stays under the API's per-read size, rendered as plain strings
(`valueRenderOption=ToString`, dates formatted). A sheet that is really a Bitable view
(`resource_type: bitable`) is read as a Bitable when the node is one; here it is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.feishu.wiki.tables import clean, column_name, render

if TYPE_CHECKING:
    from connectors.feishu.wiki.client import WikiClient

QUERY = "/open-apis/sheets/v3/spreadsheets/:spreadsheet_token/sheets/query"
VALUES = "/open-apis/sheets/v2/spreadsheets/:spreadsheet_token/values/:range"
ROWS_PER_READ = 2000
VALUE_OPTIONS = {"valueRenderOption": "ToString", "dateTimeRenderOption": "FormattedString"}


def list_sheets(client: WikiClient, token: str) -> list[dict[str, Any]]:
    data = client.get(f"list the sheets of spreadsheet {token}", QUERY, "sheets", {"spreadsheet_token": token})
    return sorted(data.get("sheets") or [], key=lambda s: int(s.get("index") or 0))


def read_rows(client: WikiClient, token: str, sheet: dict[str, Any]) -> list[list[str]]:
    """A sheet's values as text, row by row (trailing empty rows and cells as the API sends them)."""
    sheet_id = str(sheet.get("sheet_id") or "")
    grid = sheet.get("grid_properties") or {}
    rows_total, cols = int(grid.get("row_count") or 0), int(grid.get("column_count") or 0)
    ranges = [sheet_id] if not rows_total or not cols else [
        f"{sheet_id}!A{start}:{column_name(cols - 1)}{min(start + ROWS_PER_READ - 1, rows_total)}"
        for start in range(1, rows_total + 1, ROWS_PER_READ)]
    rows: list[list[str]] = []
    for rng in ranges:
        data = client.get(f"read {rng} of spreadsheet {token}", VALUES, "sheets",
                          {"spreadsheet_token": token, "range": rng}, VALUE_OPTIONS)
        rows += [[cell_text(v) for v in row or []] for row in (data.get("valueRange") or {}).get("values") or []]
    return rows


def read_spreadsheet(client: WikiClient, token: str) -> str:
    parts = []
    for sheet in list_sheets(client, token):
        if (sheet.get("resource_type") or "sheet") != "sheet":
            continue
        body = render(read_rows(client, token, sheet))
        if body:
            parts.append(f"## {clean(sheet.get('title')) or sheet.get('sheet_id')}\n\n{body}")
    return "\n\n".join(parts)


def read_embedded_sheet(client: WikiClient, block_token: str) -> str:
    """A sheet embedded in a docx page; the block's token is `<spreadsheet token>_<sheet id>`."""
    token, _, sheet_id = block_token.rpartition("_")
    sheet = next((s for s in list_sheets(client, token) if s.get("sheet_id") == sheet_id), None)
    return render(read_rows(client, token, sheet), embedded=True) if sheet else ""


def cell_text(value: Any) -> str:
    """A v2 cell: a string or number, or a list of rich segments (text, url, mention, ...)."""
    if isinstance(value, list):
        return clean("".join(_segment(v) for v in value))
    if isinstance(value, dict):
        return clean(_segment(value))
    return clean(value)


def _segment(seg: Any) -> str:
    if not isinstance(seg, dict):
        return str(seg) if seg is not None else ""
    text = str(seg.get("text") or seg.get("name") or "")
    link = seg.get("link")
    return f"[{text}]({link})" if link and text and text != link else text or str(link or "")
