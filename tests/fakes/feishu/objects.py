"""Fake sheets v2/v3, Bitable v1, drive download and legacy doc v2 APIs, for the wiki's other node kinds.

Content comes from the fixture folder (see `wiki.py`): `<node>.sheet.json`, `<node>.bitable.json`,
`<node>.file.json`, `<node>.doc.json`, looked up by the node's obj_token (the spreadsheet token, the
base's app token, the file token, the doc token), so a docx block embedding `<spreadsheet>_<sheet id>`
or `<app>_<table id>` reads the same objects.

    sheet:   {"title", "edited"?, "sheets": [{"sheet_id", "title", "rows": [[cell, ...]], "hidden"?,
              "resource_type"?}]}   cells as the v2 API sends them: strings, numbers, null, or rich
              segment lists [{"type": "url", "text", "link"}]
    bitable: {"title", "edited"?, "tables": [{"table_id", "name", "fields": [{"field_name", "type"}],
              "records": [{"record_id", "fields": {name: value}}]}]}   empty values omitted, as the API does
    file:    {"title": "<file name>", "edited"?, "blob": "<bytes file, relative to the node's folder>"}
    doc:     {"title", "edited"?, "content": "<plain text>"}

Wire details as the real APIs: `sheets/query` answers `data.sheets[]` with `grid_properties`; v2 values
answer `data.valueRange{majorDimension, range, revision, values}` clipped to the A1 range asked for,
empty cells null; Bitable lists are paged (`page_size` caps 100 tables / 100 fields / 500 records,
opaque `page_token`, `has_more`, `total`); a download is the raw bytes with Content-Disposition and
Content-Length, errors as JSON. `drive/v1/metas/batch_query` (POST, 1–200 `request_docs`) answers each
object's `latest_modify_time` (its `edited`), unknown ones in `failed_list`.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

SHEET_NOT_FOUND = 1310214
BITABLE_NOT_FOUND = 91402
FILE_NOT_FOUND = 1061007
DOC_NOT_FOUND = 2
_A1 = re.compile(r"^([A-Z]+)(\d*)$")


def _col(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _col_name(i: int) -> str:
    name, i = "", i + 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _clip(rows: list[list[Any]], rng: str) -> tuple[list[list[Any]], str] | None:
    """The cells of `<sheet>!A1:C9` (or the whole sheet), padded with null like the API; None if malformed."""
    width = max((len(r) for r in rows), default=0)
    _, _, cells = rng.partition("!")
    if not cells:
        r0, r1, c0, c1 = 0, len(rows) - 1, 0, width - 1
    else:
        start, _, end = cells.partition(":")
        a, b = _A1.match(start), _A1.match(end or start)
        if not a or not b:
            return None
        c0, c1 = _col(a.group(1)), _col(b.group(1))
        r0 = int(a.group(2) or 1) - 1
        r1 = int(b.group(2)) - 1 if b.group(2) else len(rows) - 1
    out = [[(rows[r][c] if r < len(rows) and c < len(rows[r]) else None) for c in range(c0, c1 + 1)]
           for r in range(r0, min(r1, len(rows) - 1) + 1)]
    return out, f"{rng.partition('!')[0]}!{_col_name(c0)}{r0 + 1}:{_col_name(c1)}{max(r0, r1) + 1}"


def routes(fake: Any, wiki: Any) -> list[Route]:
    from tests.fakes.feishu.wiki import page_args, paged_items

    def lookup(request: Request, token: str, kind: str, not_found: int) -> Any:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        if (f := wiki.fail_docs.get(token)) is not None:
            return JSONResponse({"code": f[1], "msg": f[2]}, status_code=f[0])
        n = wiki.tree()[2].get(token)
        if n is None or n.obj_type != kind or (kind == "file" and not (n.data or {}).get("blob")):
            return JSONResponse({"code": not_found, "msg": "not found"}, status_code=404)
        if n.data is None:  # a node written with its title only: an empty object of its kind
            n.data = {}
        if n.hidden:
            return JSONResponse({"code": 1310213 if kind == "sheet" else 91403, "msg": "forbidden"}, status_code=403)
        return n

    # ----- sheets ----------------------------------------------------------------------------
    async def sheets_query(request: Request) -> Response:
        n = lookup(request, request.path_params["token"], "sheet", SHEET_NOT_FOUND)
        if isinstance(n, Response):
            return n
        sheets = []
        for i, sh in enumerate(n.data.get("sheets") or []):
            rows = sh.get("rows") or []
            sheets.append({"sheet_id": sh["sheet_id"], "title": sh.get("title", sh["sheet_id"]), "index": i,
                           "hidden": bool(sh.get("hidden")), "resource_type": sh.get("resource_type", "sheet"),
                           "grid_properties": {"frozen_row_count": 0, "frozen_column_count": 0,
                                               "row_count": max(len(rows), 200),
                                               "column_count": max(max((len(r) for r in rows), default=0), 20)},
                           "merges": []})
        return fake.ok({"sheets": sheets})

    async def sheet_values(request: Request) -> Response:
        token, rng = request.path_params["token"], request.path_params["range"]
        n = lookup(request, token, "sheet", SHEET_NOT_FOUND)
        if isinstance(n, Response):
            return n
        sheet_id = rng.partition("!")[0]
        sheet = next((s for s in n.data.get("sheets") or [] if s["sheet_id"] == sheet_id), None)
        if sheet is None:
            return JSONResponse({"code": 90215, "msg": "sheetId not found"}, status_code=400)
        clipped = _clip(sheet.get("rows") or [], rng)
        if clipped is None:
            return JSONResponse({"code": 90202, "msg": "wrong range"}, status_code=400)
        values, actual = clipped
        revision = n.edited % 100000
        return fake.ok({"revision": revision, "spreadsheetToken": token, "valueRange": {
            "majorDimension": "ROWS", "range": actual, "revision": revision, "values": values}})

    # ----- bitable ----------------------------------------------------------------------------
    def base(request: Request) -> Any:
        return lookup(request, request.path_params["app_token"], "bitable", BITABLE_NOT_FOUND)

    def table(request: Request) -> Any:
        n = base(request)
        if isinstance(n, Response):
            return n
        t = next((t for t in n.data.get("tables") or [] if t["table_id"] == request.path_params["table_id"]), None)
        return t if t is not None else JSONResponse({"code": 91402, "msg": "NOTEXIST"}, status_code=404)

    def paged(request: Request, items: list[Any], default: int, cap: int, scope: str) -> Response:
        args = page_args(request, default, cap, scope)
        if isinstance(args, JSONResponse):
            return args
        page, more = paged_items(items, *args, scope)
        return fake.ok({"items": page, "total": len(items), **more})

    async def tables(request: Request) -> Response:
        n = base(request)
        if isinstance(n, Response):
            return n
        items = [{"table_id": t["table_id"], "name": t.get("name", t["table_id"]), "revision": n.edited % 1000}
                 for t in n.data.get("tables") or []]
        return paged(request, items, 20, 100, f"tables/{n.obj_token}")

    async def fields(request: Request) -> Response:
        t = table(request)
        if isinstance(t, Response):
            return t
        items = [{"field_id": f"fld{i:06d}", "field_name": f["field_name"], "type": f.get("type", 1),
                  "property": None, "is_primary": i == 0, "ui_type": "Text"} for i, f in enumerate(t["fields"])]
        return paged(request, items, 20, 100, f"fields/{t['table_id']}")

    async def records(request: Request) -> Response:
        t = table(request)
        if isinstance(t, Response):
            return t
        items = [{"record_id": r.get("record_id", f"rec{i:06d}"),
                  "fields": {k: v for k, v in r["fields"].items() if v not in (None, "", [])}}
                 for i, r in enumerate(t.get("records") or [])]
        return paged(request, items, 20, 500, f"records/{t['table_id']}")

    # ----- drive and legacy doc ------------------------------------------------------------------
    async def download(request: Request) -> Response:
        n = lookup(request, request.path_params["file_token"], "file", FILE_NOT_FOUND)
        if isinstance(n, Response):
            return n
        return FileResponse(n.file.parent / n.data["blob"], filename=n.data.get("name") or n.title,
                            media_type="application/octet-stream")

    async def metas(request: Request) -> Response:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        docs = (await request.json()).get("request_docs") or []
        if not 1 <= len(docs) <= 200:
            return JSONResponse({"code": 970002, "msg": "request_docs: 1 to 200"}, status_code=400)
        by_obj = wiki.tree()[2]
        found, failed = [], []
        for d in docs:
            n = by_obj.get(d.get("doc_token"))
            if n is None or n.obj_type != d.get("doc_type") or n.hidden:
                failed.append({"token": d.get("doc_token"), "code": 970005})
                continue
            found.append({"doc_token": n.obj_token, "doc_type": n.obj_type, "title": n.title, "owner_id": "ou_fake",
                          "create_time": str(n.edited - 86400), "latest_modify_user": "ou_fake",
                          "latest_modify_time": str(n.edited)})
        return fake.ok({"metas": found, "failed_list": failed})

    async def raw_content(request: Request) -> Response:
        n = lookup(request, request.path_params["doc_token"], "doc", DOC_NOT_FOUND)
        if isinstance(n, Response):
            return n
        return fake.ok({"content": n.data.get("content", "")})

    return [
        Route("/open-apis/sheets/v3/spreadsheets/{token}/sheets/query", sheets_query, methods=["GET"]),
        Route("/open-apis/sheets/v2/spreadsheets/{token}/values/{range}", sheet_values, methods=["GET"]),
        Route("/open-apis/bitable/v1/apps/{app_token}/tables", tables, methods=["GET"]),
        Route("/open-apis/bitable/v1/apps/{app_token}/tables/{table_id}/fields", fields, methods=["GET"]),
        Route("/open-apis/bitable/v1/apps/{app_token}/tables/{table_id}/records", records, methods=["GET"]),
        Route("/open-apis/drive/v1/files/{file_token}/download", download, methods=["GET"]),
        Route("/open-apis/doc/v2/{doc_token}/raw_content", raw_content, methods=["GET"]),
        Route("/open-apis/drive/v1/metas/batch_query", metas, methods=["POST"]),
    ]
