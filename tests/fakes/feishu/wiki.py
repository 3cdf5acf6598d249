"""Fake wiki v2 + docx v1 APIs, serving a wiki from a folder of fixture files.

The folder (`fake.wiki.root`) is read on every request, so a test edits, adds, moves and deletes
pages between two syncs by changing files:

    <root>/<space_id>/                   a space; optional `_space.json` {"name": ...}
      <node>.md                          a docx page: markdown (converted to docx blocks), optional
                                         front matter: title, obj_token, edited (epoch s), hidden
      <node>.blocks.json                 a docx page as raw blocks: {"title": ..., "blocks": [...]}
      <node>.sheet|.bitable|.mindnote|.file|.doc|.slides   another type; first line = title
      <node>.sheet.json|.bitable.json|.file.json|.doc.json   that type with content, served by
                                         `objects.py` (sheets v2/v3, Bitable v1, drive download, doc v2)
      <node>.shortcut                    a shortcut: {"origin": "<node token>"}
      <node>/                            the children of <node>, next to its file

Siblings are ordered by file name; the file stem is the node token; `obj_edit_time` is the front
matter's `edited` or the file's mtime. `hidden: true` nodes take their place in a result page but are
filtered out, as the real API filters what the app may not see (this is how a page comes back
empty with has_more=true). Wire details as the real API: string ids and times, page_size caps
(50 nodes, 500 blocks), opaque page tokens, 99991663 for bad tokens (via `fake.check_auth`).
Failures: `fake.wiki.fail_children[parent token or space id]` and `fake.wiki.fail_docs[obj_token]`
= (http status, code, msg); rate limits through `fake.inject(...)`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

OTHER_TYPES = {"sheet": "shtcn", "bitable": "bascn", "mindnote": "bmncn", "file": "boxcn", "doc": "doccn",
               "slides": "sldcn"}
LANGS = {"": 1, "plaintext": 1, "bash": 7, "c": 10, "cpp": 9, "css": 12, "go": 22, "html": 24, "json": 28,
         "java": 29, "javascript": 30, "js": 30, "markdown": 39, "python": 49, "py": 49, "rust": 53, "sql": 56,
         "shell": 60, "sh": 60, "typescript": 63, "ts": 63, "xml": 66, "yaml": 67, "toml": 75}
PARAM_ERROR = 99992402


@dataclass
class Node:
    space_id: str
    token: str
    parent: str
    obj_type: str
    title: str
    edited: int
    file: Path
    obj_token: str = ""
    hidden: bool = False
    origin: str = ""  # shortcuts: the origin node token
    body: str = ""
    raw_blocks: list[dict[str, Any]] | None = None
    children: list[Node] = field(default_factory=list)
    data: dict[str, Any] | None = None  # a sheet's, base's, file's or legacy doc's content (objects.py)


class FakeWiki:
    def __init__(self) -> None:
        self.root: Path | None = None
        self.fail_children: dict[str, tuple[int, int, str]] = {}
        self.fail_docs: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()
        self._sig: tuple[Any, ...] | None = None
        self._tree: tuple[dict[str, dict[str, Any]], dict[str, Node], dict[str, Node]] = ({}, {}, {})

    # ----- reading the folder -------------------------------------------------------------------
    def tree(self) -> tuple[dict[str, dict[str, Any]], dict[str, Node], dict[str, Node]]:
        """(spaces, nodes by node token, docx/other nodes by obj token), re-read when a file changed."""
        assert self.root is not None, "set fake.wiki.root to a fixture folder"
        sig = tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in self.root.rglob("*")))
        with self._lock:
            if sig != self._sig:
                self._tree, self._sig = self._read(), sig
            return self._tree

    def _read(self) -> tuple[dict[str, dict[str, Any]], dict[str, Node], dict[str, Node]]:
        assert self.root is not None
        spaces: dict[str, dict[str, Any]] = {}
        nodes: dict[str, Node] = {}
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            meta = json.loads((d / "_space.json").read_text()) if (d / "_space.json").exists() else {}
            spaces[d.name] = {"space_id": d.name, "name": meta.get("name", d.name), "description": "",
                              "space_type": "team", "visibility": meta.get("visibility", "private"), "top": []}
            spaces[d.name]["top"] = self._read_folder(d, d.name, "", nodes)
        by_obj = {n.obj_token: n for n in nodes.values() if n.obj_type != "shortcut"}
        return spaces, nodes, by_obj

    def _read_folder(self, folder: Path, space: str, parent: str, nodes: dict[str, Node]) -> list[Node]:
        out = []
        for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("_")):
            token, _, ext = f.name.partition(".")
            node = _parse_node(f, space, parent, token, ext)
            if node is None:
                continue
            nodes[token] = node
            if (folder / token).is_dir():
                node.children = self._read_folder(folder / token, space, token, nodes)
            out.append(node)
        return out


def _parse_node(f: Path, space: str, parent: str, token: str, ext: str) -> Node | None:
    text = f.read_text(encoding="utf-8")
    mtime = int(f.stat().st_mtime)
    if ext == "md":
        front: dict[str, Any] = {}
        m = re.match(r"\A---\s*\n(.*?)\n---\s*\n", text, re.DOTALL)
        if m:
            front, text = yaml.safe_load(m.group(1)) or {}, text[m.end():]
        title = front.get("title")
        h1 = re.match(r"\A\s*#\s+(.+)\n?", text)
        if not title and h1:
            title, text = h1.group(1).strip(), text[h1.end():]
        return Node(space, token, parent, "docx", str(title or token), int(front.get("edited", mtime)), f,
                    str(front.get("obj_token") or _obj_token("doxcn", token)), bool(front.get("hidden")),
                    body=text)
    if ext == "blocks.json":
        d = json.loads(text)
        return Node(space, token, parent, "docx", d.get("title", token), int(d.get("edited", mtime)), f,
                    d.get("obj_token") or _obj_token("doxcn", token), raw_blocks=d["blocks"])
    if ext.endswith(".json") and ext[:-5] in OTHER_TYPES:
        kind, d = ext[:-5], json.loads(text)
        return Node(space, token, parent, kind, str(d.get("title") or token), int(d.get("edited", mtime)), f,
                    str(d.get("obj_token") or _obj_token(OTHER_TYPES[kind], token)), bool(d.get("hidden")), data=d)
    if ext in OTHER_TYPES:
        title = text.strip().splitlines()[0] if text.strip() else token
        return Node(space, token, parent, ext, title, mtime, f, _obj_token(OTHER_TYPES[ext], token))
    if ext == "shortcut":
        return Node(space, token, parent, "shortcut", "", mtime, f, origin=json.loads(text)["origin"])
    return None


def _obj_token(prefix: str, token: str) -> str:
    return prefix + hashlib.sha1(token.encode()).hexdigest()[:20]


def node_json(n: Node, nodes: dict[str, Node]) -> dict[str, Any] | None:
    target = nodes.get(n.origin) if n.obj_type == "shortcut" else n
    if target is None:
        return None
    return {
        "space_id": n.space_id, "node_token": n.token, "obj_token": target.obj_token, "obj_type": target.obj_type,
        "parent_node_token": n.parent, "node_type": "shortcut" if n.origin else "origin",
        "origin_node_token": target.token, "origin_space_id": target.space_id, "has_child": bool(n.children),
        "title": target.title, "obj_create_time": str(target.edited - 86400), "obj_edit_time": str(target.edited),
        "node_create_time": str(n.edited - 86400), "creator": "ou_fake", "owner": "ou_fake",
        "node_creator": "ou_fake",
    }


# ----- markdown → docx blocks (the real API's shapes) ----------------------------------------------
_INLINE = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)|\*(.+?)\*")


def elements(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def run(content: str, **style: Any) -> None:
        if content:
            out.append({"text_run": {"content": content, "text_element_style": {
                "bold": False, "inline_code": False, "italic": False, "strikethrough": False, "underline": False,
                **style}}})

    pos = 0
    for m in _INLINE.finditer(text):
        run(text[pos:m.start()])
        if m.group(1):
            run(m.group(1), bold=True)
        elif m.group(2):
            run(m.group(2), inline_code=True)
        elif m.group(3):
            run(m.group(3), link={"url": quote(m.group(4), safe="")})
        else:
            run(m.group(5), italic=True)
        pos = m.end()
    run(text[pos:])
    return out


def markdown_blocks(doc_id: str, title: str, body: str) -> list[dict[str, Any]]:
    """The flat, document-ordered block list the blocks API returns for a page written in markdown."""
    counter = iter(range(1, 1 << 30))
    page: dict[str, Any] = {"block_id": doc_id, "block_type": 1, "parent_id": "", "children": [],
                            "page": {"elements": elements(title), "style": {"align": 1}}}

    def block(parent: dict[str, Any], kind: int, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        b = {"block_id": f"doxcn{hashlib.sha1(f'{doc_id}:{next(counter)}'.encode()).hexdigest()[:22]}",
             "block_type": kind, "parent_id": parent["block_id"], key: payload}
        parent.setdefault("children", []).append(b)
        return b

    def text(parent: dict[str, Any], s: str, kind: int = 2, key: str = "text", **style: Any) -> dict[str, Any]:
        return block(parent, kind, key, {"elements": elements(s), "style": style})

    lines = body.splitlines()
    items: list[tuple[int, dict[str, Any]]] = []  # open list items: (indent, block)
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip(" "))
        s = line.strip()
        item = re.match(r"(- \[( |x)\] |[-*+] |(\d+)\. )(.*)", s)
        if not item:
            items = []
        if not s:
            pass
        elif s.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            code = "\n".join(lines[i + 1:j])
            block(page, 14, "code", {"elements": [{"text_run": {"content": code, "text_element_style": {}}}],
                                     "style": {"language": LANGS.get(s[3:].strip().lower(), 1), "wrap": False}})
            i = j
        elif m := re.match(r"(#{1,9})\s+(.*)", s):
            text(page, m.group(2), 2 + len(m.group(1)), f"heading{len(m.group(1))}")
        elif s == "---":
            block(page, 22, "divider", {})
        elif s.startswith(">"):
            quoted = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                quoted.append(lines[i].strip()[1:].strip())
                i += 1
            i -= 1
            callout = quoted[0].upper() == "[!NOTE]"
            box = block(page, 19, "callout", {"background_color": 5, "emoji_id": "bulb"}) if callout \
                else block(page, 34, "quote_container", {})
            for q in quoted[1 if callout else 0:]:
                text(box, q)
        elif s.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            i -= 1
            cols = max(len(r) for r in rows)
            table = block(page, 31, "table", {"cells": [], "property": {"row_size": len(rows), "column_size": cols}})
            for r in rows:
                for c in r + [""] * (cols - len(r)):
                    cell = block(table, 32, "table_cell", {})
                    table["table"]["cells"].append(cell["block_id"])
                    text(cell, c)
        elif item:
            while items and items[-1][0] >= indent:
                items.pop()
            parent = items[-1][1] if items else page
            if item.group(2) is not None:
                b = text(parent, item.group(4), 17, "todo", done=item.group(2) == "x")
            elif item.group(3):
                b = text(parent, item.group(4), 13, "ordered", sequence="1" if item.group(3) == "1" else "auto")
            else:
                b = text(parent, item.group(4), 12, "bullet")
            items.append((indent, b))
        else:
            text(page, s)
        i += 1

    flat: list[dict[str, Any]] = []

    def walk(b: dict[str, Any]) -> None:
        kids = b.pop("children", [])
        flat.append({**b, **({"children": [k["block_id"] for k in kids]} if kids else {})})
        for k in kids:
            walk(k)

    walk(page)
    return flat


# ----- routes ---------------------------------------------------------------------------------------
def page_args(request: Request, default: int, cap: int, scope: str) -> tuple[int, int] | JSONResponse:
    try:
        size = int(request.query_params.get("page_size", default))
        token = request.query_params.get("page_token", "")
        offset = 0
        if token:
            where, _, off = base64.urlsafe_b64decode(token.encode()).decode().rpartition("|")
            if where != scope:
                raise ValueError
            offset = int(off)
    except ValueError:
        return JSONResponse({"code": PARAM_ERROR, "msg": "field validation failed"}, status_code=400)
    if not 1 <= size <= cap:
        return JSONResponse({"code": PARAM_ERROR, "msg": f"field validation failed: page_size max {cap}"},
                            status_code=400)
    return offset, size


def paged_items(items: list[Any], offset: int, size: int, scope: str) -> tuple[list[Any], dict[str, Any]]:
    has_more = offset + size < len(items)
    token = base64.urlsafe_b64encode(f"{scope}|{offset + size}".encode()).decode() if has_more else ""
    return items[offset:offset + size], {"has_more": has_more, "page_token": token}


def routes(fake: Any) -> list[Route]:
    wiki = FakeWiki()
    fake.wiki = wiki

    def fail(status: int, code: int, msg: str) -> JSONResponse:
        return JSONResponse({"code": code, "msg": msg}, status_code=status)

    async def list_spaces(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        args = page_args(request, 20, 50, "spaces")
        if isinstance(args, JSONResponse):
            return args
        spaces = [{k: v for k, v in s.items() if k != "top"} for s in wiki.tree()[0].values()]
        items, more = paged_items(spaces, *args, "spaces")
        return fake.ok({"items": items, **more})

    async def get_space(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        space = wiki.tree()[0].get(request.path_params["space_id"])
        if space is None:
            return fail(400, 131006, "permission denied: wiki space permission denied")
        return fake.ok({"space": {k: v for k, v in space.items() if k != "top"}})

    async def list_nodes(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        space_id = request.path_params["space_id"]
        parent = request.query_params.get("parent_node_token", "")
        spaces, nodes, _ = wiki.tree()
        if space_id not in spaces:
            return fail(400, 131006, "permission denied: wiki space permission denied")
        if (f := wiki.fail_children.get(parent or space_id)) is not None:
            return fail(*f)
        if parent and (parent not in nodes or nodes[parent].space_id != space_id):
            return fail(400, 131005, "not found: node not found")
        args = page_args(request, 20, 50, f"{space_id}/{parent}")
        if isinstance(args, JSONResponse):
            return args
        kids = nodes[parent].children if parent else spaces[space_id]["top"]
        page, more = paged_items(kids, *args, f"{space_id}/{parent}")
        items = [j for n in page if not n.hidden and (j := node_json(n, nodes)) is not None]
        return fake.ok({"items": items, **more})

    async def get_node(request: Request) -> JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        token, obj_type = request.query_params.get("token", ""), request.query_params.get("obj_type", "wiki")
        _, nodes, by_obj = wiki.tree()
        n = nodes.get(token) if obj_type == "wiki" else by_obj.get(token)
        j = node_json(n, nodes) if n is not None and not n.hidden else None
        return fake.ok({"node": j}) if j else fail(400, 131005, "not found: node not found")

    def document(request: Request) -> Node | JSONResponse:
        if (bad := fake.check_auth(request)) is not None:
            return bad
        doc_id = request.path_params["document_id"]
        if (f := wiki.fail_docs.get(doc_id)) is not None:
            return fail(*f)
        n = wiki.tree()[2].get(doc_id)
        if n is None or n.obj_type != "docx":
            return fail(404, 1770002, "not found")
        if n.hidden:
            return fail(403, 1770032, "forbidden")
        return n

    def blocks_of(n: Node) -> list[dict[str, Any]]:
        return n.raw_blocks if n.raw_blocks is not None else markdown_blocks(n.obj_token, n.title, n.body)

    async def list_blocks(request: Request) -> JSONResponse:
        n = document(request)
        if isinstance(n, JSONResponse):
            return n
        args = page_args(request, 500, 500, n.obj_token)
        if isinstance(args, JSONResponse):
            return args
        items, more = paged_items(blocks_of(n), *args, n.obj_token)
        return fake.ok({"items": items, **more})

    async def get_document(request: Request) -> JSONResponse:
        n = document(request)
        if isinstance(n, JSONResponse):
            return n
        return fake.ok({"document": {"document_id": n.obj_token, "revision_id": n.edited % 1000 + 1,
                                     "title": n.title}})

    async def raw_content(request: Request) -> JSONResponse:
        n = document(request)
        if isinstance(n, JSONResponse):
            return n
        texts = ["".join(e.get("text_run", {}).get("content", "") for e in b.get(k, {}).get("elements", []))
                 for b in blocks_of(n) for k in b if isinstance(b.get(k), dict)]
        return fake.ok({"content": "\n".join(t for t in texts if t) + "\n"})

    from tests.fakes.feishu import objects

    return objects.routes(fake, wiki) + [
        Route("/open-apis/wiki/v2/spaces", list_spaces, methods=["GET"]),
        Route("/open-apis/wiki/v2/spaces/get_node", get_node, methods=["GET"]),
        Route("/open-apis/wiki/v2/spaces/{space_id}", get_space, methods=["GET"]),
        Route("/open-apis/wiki/v2/spaces/{space_id}/nodes", list_nodes, methods=["GET"]),
        Route("/open-apis/docx/v1/documents/{document_id}", get_document, methods=["GET"]),
        Route("/open-apis/docx/v1/documents/{document_id}/blocks", list_blocks, methods=["GET"]),
        Route("/open-apis/docx/v1/documents/{document_id}/raw_content", raw_content, methods=["GET"]),
    ]
