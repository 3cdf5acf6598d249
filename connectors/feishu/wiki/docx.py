"""Docx blocks → markdown, keeping the structure the chunker cuts on.

Headings, lists (nested), code with its language, quotes, callouts, tables, links, to-dos and
dividers survive as markdown. Blocks that point elsewhere keep what a reader would take from them:
an embedded sheet or Bitable table is read through its own API (`Embeds`) and rendered as a table, an
image keeps its caption with a link to the page it sits on, a mentioned document its title and link,
an iframe or link preview its URL, a file block its name, a synced block its text (read from its
source document when only referenced). Other blocks without text of their own are dropped, but their
child blocks, if any, are still rendered so no text is lost.
"""

from __future__ import annotations

import re
from typing import Any, Protocol
from urllib.parse import unquote

PAGE, TEXT, BULLET, ORDERED, CODE, QUOTE, EQUATION, TODO = 1, 2, 12, 13, 14, 15, 16, 17
CALLOUT, DIVIDER, TABLE, TABLE_CELL, QUOTE_CONTAINER = 19, 22, 31, 32, 34
BITABLE, FILE, IFRAME, IMAGE, SHEET, LINK_PREVIEW, SOURCE_SYNCED, REFERENCE_SYNCED = 18, 23, 26, 27, 30, 48, 49, 50
HEADINGS = range(3, 12)  # heading1 .. heading9
_HEADING_LIKE = re.compile(r"^(#{1,6}\s)", re.MULTILINE)  # plain text that markdown would read as a heading
TEXT_KEYS = {PAGE: "page", TEXT: "text", BULLET: "bullet", ORDERED: "ordered", CODE: "code", QUOTE: "quote",
             EQUATION: "equation", TODO: "todo", **{t: f"heading{t - 2}" for t in HEADINGS}}

CODE_LANGUAGES = [
    "", "abap", "ada", "apache", "apex", "assembly", "bash", "csharp", "cpp", "c", "cobol", "css",
    "coffeescript", "d", "dart", "delphi", "django", "dockerfile", "erlang", "fortran", "foxpro", "go",
    "groovy", "html", "htmlbars", "http", "haskell", "json", "java", "javascript", "julia", "kotlin", "latex",
    "lisp", "logo", "lua", "matlab", "makefile", "markdown", "nginx", "objectivec", "openedge-abl", "php",
    "perl", "postscript", "powershell", "prolog", "protobuf", "python", "r", "rpg", "ruby", "rust", "sas",
    "scss", "sql", "scala", "scheme", "scratch", "shell", "swift", "thrift", "typescript", "vbscript",
    "vbnet", "xml", "yaml", "cmake", "diff", "gherkin", "graphql", "glsl", "properties", "solidity", "toml",
]  # index + 1 = Feishu's code language id


class Embeds(Protocol):
    """Reads what a docx block only points at; each returns markdown ("" when there is nothing)."""

    def sheet(self, token: str) -> str: ...  # `<spreadsheet token>_<sheet id>`

    def bitable(self, token: str) -> str: ...  # `<app token>_<table id>`

    def synced(self, document_id: str, block_id: str) -> str: ...  # a synced block's source


def code_language(lang_id: Any) -> str:
    try:
        i = int(lang_id)
    except (TypeError, ValueError):
        return ""
    return CODE_LANGUAGES[i - 1] if 1 <= i <= len(CODE_LANGUAGES) else ""


def inline(elements: list[dict[str, Any]] | None) -> str:
    """A block's text elements as inline markdown."""
    out = []
    for el in elements or []:
        if "text_run" in el:
            run = el["text_run"] or {}
            out.append(_styled(str(run.get("content", "")), run.get("text_element_style") or {}))
        elif "mention_doc" in el:
            doc = el["mention_doc"] or {}
            title = str(doc.get("title") or doc.get("token") or "")
            url = unquote(str(doc.get("url") or ""))
            out.append(f"[{title}]({url})" if url else title)
        elif "equation" in el:
            out.append(f"${str((el['equation'] or {}).get('content', '')).strip()}$")
        elif "mention_user" in el:
            out.append("@" + str((el["mention_user"] or {}).get("user_id", "")))
    return "".join(out)


def _styled(text: str, style: dict[str, Any]) -> str:
    if not text.strip():
        return text
    lead, core, trail = text[: len(text) - len(text.lstrip())], text.strip(), text[len(text.rstrip()):]
    if style.get("inline_code"):
        core = f"`{core}`"
    else:
        if style.get("bold"):
            core = f"**{core}**"
        if style.get("italic"):
            core = f"*{core}*"
        if style.get("strikethrough"):
            core = f"~~{core}~~"
    link = (style.get("link") or {}).get("url")
    if link:
        core = f"[{core}]({unquote(str(link))})"
    return lead + core + trail


class _Renderer:
    def __init__(self, blocks: list[dict[str, Any]], embeds: Embeds | None = None, page_url: str = "") -> None:
        self.by_id = {str(b.get("block_id")): b for b in blocks}
        self.embeds = embeds
        self.page_url = page_url

    def children(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.by_id[c] for c in block.get("children") or [] if c in self.by_id]

    def render_many(self, blocks: list[dict[str, Any]]) -> str:
        """Sibling blocks: list items stay together, everything else is separated by a blank line."""
        parts: list[tuple[str, int | None]] = []  # (markdown, list kind or None)
        number = 0
        for b in blocks:
            kind = b.get("block_type")
            if kind == ORDERED:
                seq = str((b.get("ordered", {}).get("style") or {}).get("sequence", "auto"))
                number = int(seq) if seq.isdigit() else number + 1
            else:
                number = 0
            text = self.render(b, number)
            if text.strip():
                parts.append((text, kind if kind in (BULLET, ORDERED, TODO) else None))
        out = ""
        for i, (text, item) in enumerate(parts):
            if i:
                out += "\n" if item is not None and item == parts[i - 1][1] else "\n\n"
            out += text
        return out

    def render(self, b: dict[str, Any], number: int = 0) -> str:
        kind = b.get("block_type")
        key = TEXT_KEYS.get(kind)  # type: ignore[arg-type]
        payload = b.get(key, {}) if key else {}
        text = inline(payload.get("elements")) if key else ""
        kids = self.children(b)
        if kind in HEADINGS:
            heading = "#" * min(int(kind) - 2, 6) + " " + text.strip()  # type: ignore[arg-type]
            return _join(heading, self.render_many(kids)) if text.strip() else self.render_many(kids)
        if kind in (TEXT, EQUATION):
            body = f"$$\n{text.strip()}\n$$" if kind == EQUATION else _HEADING_LIKE.sub(r"\\\1", text)
            return _join(body, self.render_many(kids))
        if kind in (BULLET, ORDERED, TODO):
            if kind == BULLET:
                marker = "- "
            elif kind == ORDERED:
                marker = f"{number or 1}. "
            else:
                marker = "- [x] " if (payload.get("style") or {}).get("done") else "- [ ] "
            nested = self.render_many(kids)
            pad = " " * len(marker if kind != TODO else "- ")
            item = marker + text.replace("\n", "\n" + pad)
            return item + ("\n" + _indent(nested, pad) if nested.strip() else "")
        if kind == CODE:
            lang = code_language((payload.get("style") or {}).get("language"))
            code = "".join(str((e.get("text_run") or {}).get("content", "")) for e in payload.get("elements") or [])
            fence = "````" if "```" in code else "```"
            return f"{fence}{lang}\n{code.rstrip(chr(10))}\n{fence}"
        if kind == QUOTE:
            return _quote(_join(text, self.render_many(kids)))
        if kind in (CALLOUT, QUOTE_CONTAINER):
            return _quote(self.render_many(kids))
        if kind == DIVIDER:
            return "---"
        if kind == TABLE:
            return self.table(b)
        if kind in (SHEET, BITABLE, IMAGE, IFRAME, LINK_PREVIEW, FILE, REFERENCE_SYNCED):
            return _join(self.pointer(b, kind), self.render_many(kids))
        return self.render_many(kids)  # page, grid, grid column, source synced, unknown containers

    def pointer(self, b: dict[str, Any], kind: Any) -> str:
        """A block that points elsewhere, as what a reader would take from it."""
        payload = b.get(_POINTER_KEYS[kind]) or {}
        if kind == SHEET:
            return self.embeds.sheet(str(payload.get("token") or "")) if self.embeds and payload.get("token") else ""
        if kind == BITABLE:
            return self.embeds.bitable(str(payload.get("token") or "")) if self.embeds and payload.get("token") else ""
        if kind == IMAGE:
            caption = " ".join(str((payload.get("caption") or {}).get("content") or "").split())
            if not caption:
                return ""
            return f"[图片：{_link_text(caption)}]({self.page_url})" if self.page_url else f"（图片：{caption}）"
        if kind in (IFRAME, LINK_PREVIEW):
            url = unquote(str((payload.get("component") or payload).get("url") or ""))
            return f"<{url}>" if url.startswith(("http://", "https://")) else ""
        if kind == FILE:
            name = str(payload.get("name") or "").strip()
            return f"附件：{name}" if name else ""
        if self.children(b) or not self.embeds:  # a reference synced block whose blocks came along
            return ""
        doc, block = str(payload.get("source_document_id") or ""), str(payload.get("source_block_id") or "")
        return self.embeds.synced(doc, block) if doc and block else ""

    def table(self, b: dict[str, Any]) -> str:
        prop = (b.get("table") or {}).get("property") or {}
        cells = [str(c) for c in (b.get("table") or {}).get("cells") or []]
        cols = int(prop.get("column_size") or 0) or 1
        rows = [cells[i:i + cols] for i in range(0, len(cells), cols)]
        if not rows:
            return ""
        lines = []
        for r, row in enumerate(rows):
            texts = [self.cell_text(c) for c in row] + [""] * (cols - len(row))
            lines.append("| " + " | ".join(texts) + " |")
            if r == 0:
                lines.append("|" + "|".join(["---"] * cols) + "|")
        return "\n".join(lines)

    def cell_text(self, cell_id: str) -> str:
        cell = self.by_id.get(cell_id)
        if cell is None:
            return ""
        text = self.render_many(self.children(cell))
        return " <br> ".join(line.strip() for line in text.splitlines() if line.strip()).replace("|", "\\|")


def _join(head: str, tail: str) -> str:
    return head + ("\n\n" + tail if tail.strip() else "") if head.strip() else tail


def _indent(text: str, pad: str) -> str:
    return "\n".join(pad + line if line.strip() else line for line in text.split("\n"))


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.split("\n")) if text.strip() else ""


_POINTER_KEYS = {SHEET: "sheet", BITABLE: "bitable", IMAGE: "image", IFRAME: "iframe", LINK_PREVIEW: "link_preview",
                 FILE: "file", REFERENCE_SYNCED: "reference_synced"}


def _link_text(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def embedded_objects(blocks: list[dict[str, Any]]) -> set[str]:
    """The objects a document's blocks embed and `Embeds` would read, as `type:token` (sheet, bitable,
    docx for a synced block's source)."""
    ids = {str(b.get("block_id")) for b in blocks}
    out = set()
    for b in blocks:
        kind = b.get("block_type")
        payload = b.get(_POINTER_KEYS.get(kind, ""), None) or {}  # type: ignore[arg-type]
        if kind in (SHEET, BITABLE) and payload.get("token"):
            out.add(f"{_POINTER_KEYS[kind]}:{str(payload['token']).rpartition('_')[0]}")
        elif kind == REFERENCE_SYNCED and payload.get("source_document_id") and not any(
                c in ids for c in b.get("children") or []):
            out.add(f"docx:{payload['source_document_id']}")
    return out


def render_subtree(blocks: list[dict[str, Any]], block_id: str) -> str:
    """One block of a document and what is under it (a synced block's source), without embeds."""
    r = _Renderer(blocks)
    b = r.by_id.get(block_id)
    return r.render_many(r.children(b)) if b is not None else ""


def blocks_to_markdown(blocks: list[dict[str, Any]], embeds: Embeds | None = None, page_url: str = "") -> str:
    """A document's flat block list (as the blocks API returns it) as one markdown text; `embeds`
    reads embedded sheets, Bitables and synced blocks, `page_url` is what an image links to."""
    if not blocks:
        return ""
    r = _Renderer(blocks, embeds, page_url)
    root = next((b for b in blocks if b.get("block_type") == PAGE), None)
    if root is None:  # no page block: render the blocks without a known parent, in order
        roots = [b for b in blocks if str(b.get("parent_id") or "") not in r.by_id]
        text = r.render_many(roots)
    else:
        text = r.render_many(r.children(root))
    return text.strip("\n") + "\n" if text.strip() else ""
