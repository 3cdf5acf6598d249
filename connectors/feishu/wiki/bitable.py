"""Feishu Bitable bases as markdown: every table a section, every record its fields by name.

Bitable v1: `apps/<app>/tables` (paged, 100 a page), each table's `fields` (for their order and
names, 100 a page) and `records` (500 a page, `page_token` / `has_more`). Field values come in many
shapes (text or rich-text segments, numbers, options, people, dates in epoch milliseconds, links,
attachments, lookups wrapping any of these); each is rendered as the text a reader would see.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from connectors.feishu.wiki.tables import clean, render

if TYPE_CHECKING:
    from connectors.feishu.wiki.client import WikiClient

TABLES = "/open-apis/bitable/v1/apps/:app_token/tables"
FIELDS = "/open-apis/bitable/v1/apps/:app_token/tables/:table_id/fields"
RECORDS = "/open-apis/bitable/v1/apps/:app_token/tables/:table_id/records"
DATE_FIELD = 5  # field type: date (epoch milliseconds)
CHECKBOX_FIELD = 7
CHINA = timezone(timedelta(hours=8))  # Feishu shows dates in the tenant's zone; most tenants are UTC+8


def list_tables(client: WikiClient, app_token: str) -> list[dict[str, Any]]:
    return [t for items in client.get_pages(f"list the tables of base {app_token}", TABLES, "bitable",
                                            {"app_token": app_token}, {"page_size": 100}) for t in items]


def read_table_rows(client: WikiClient, app_token: str, table_id: str) -> list[list[str]]:
    """The table as rows of text, the field names first."""
    where = {"app_token": app_token, "table_id": table_id}
    fields = [f for items in client.get_pages(f"list the fields of table {table_id}", FIELDS, "bitable", where,
                                              {"page_size": 100}) for f in items]
    names = [str(f.get("field_name") or "") for f in fields]
    types = {str(f.get("field_name") or ""): int(f.get("type") or 0) for f in fields}
    rows = [names]
    for items in client.get_pages(f"read the records of table {table_id}", RECORDS, "bitable", where,
                                  {"page_size": 500}):
        for rec in items:
            values = rec.get("fields") or {}
            rows.append([field_text(values.get(n), types.get(n, 0)) for n in names])
    return rows


def read_base(client: WikiClient, app_token: str) -> str:
    parts = []
    for table in list_tables(client, app_token):
        body = render(read_table_rows(client, app_token, str(table.get("table_id") or "")))
        if body:
            parts.append(f"## {clean(table.get('name')) or table.get('table_id')}\n\n{body}")
    return "\n\n".join(parts)


def read_embedded_base(client: WikiClient, block_token: str) -> str:
    """A Bitable table embedded in a docx page; the block's token is `<app token>_<table id>`."""
    app_token, _, table_id = block_token.rpartition("_")
    return render(read_table_rows(client, app_token, table_id), embedded=True) if app_token and table_id else ""


def field_text(value: Any, field_type: int = 0) -> str:
    if value is None or value == "" or value == []:
        return ""
    if field_type == DATE_FIELD and isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=CHINA).strftime("%Y-%m-%d")
    if field_type == CHECKBOX_FIELD or isinstance(value, bool):
        return "是" if value else "否"
    return clean(_text(value))


def _text(value: Any) -> str:
    if isinstance(value, list):
        segments = [_text(v) for v in value]
        rich = all(isinstance(v, dict) and v.get("type") in ("text", "url", "mention") for v in value)
        return ("" if rich else "、").join(s for s in segments if s)
    if isinstance(value, dict):
        if "value" in value and "type" in value:  # lookup / formula: {"type": n, "value": [...]}
            return _text(value["value"])
        if "link" in value:  # url field or a rich-text link
            text, link = str(value.get("text") or ""), str(value.get("link") or "")
            return f"[{text}]({link})" if text and text != link else link
        for key in ("text", "name", "full_address", "en_name", "email"):
            if value.get(key):
                return str(value[key])
        if value.get("text_arr"):  # a link to records of another table
            return "、".join(str(t) for t in value["text_arr"])
        return ""
    return str(value)
