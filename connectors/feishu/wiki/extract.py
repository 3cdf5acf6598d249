"""Text out of uploaded files: PDF (pypdf), Word (python-docx), PowerPoint (python-pptx), Excel
(openpyxl), Markdown and plain text, as markdown the chunker can cut on.

Every reader checks a deadline between pages, paragraphs, slides or rows, so a huge or hostile file
ends with `Unreadable` instead of holding a sync thread for ever; so does a file with no text, a
format nobody here reads, or a parser's complaint. Nothing here knows about Feishu.
"""

from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import IO, Any

from connectors.feishu.wiki.tables import clean, render

log = logging.getLogger(__name__)
KINDS = ("pdf", "docx", "pptx", "xlsx", "md", "txt")
_EXT = {".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".xlsm": "xlsx", ".md": "md",
        ".markdown": "md", ".txt": "txt", ".text": "txt", ".csv": "txt", ".log": "txt"}
_ZIP_MARKERS = {"word/document.xml": "docx", "ppt/presentation.xml": "pptx", "xl/workbook.xml": "xlsx"}


class Unreadable(Exception):
    """This file yields no text for the index; `str()` says why, for the sync report."""


class _Deadline:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def check(self, where: str) -> None:
        if time.monotonic() > self.deadline:
            raise Unreadable(f"reading took too long (stopped at {where})")


def file_kind(name: str, head: bytes) -> str:
    """The format by the file name's extension, else by its first bytes; "" when not one we read."""
    ext = PurePosixPath(name.lower()).suffix
    if ext in _EXT:
        return _EXT[ext]
    if head.startswith(b"%PDF"):
        return "pdf"
    return ""


def extract_text(stream: IO[bytes], name: str, deadline: float) -> str:
    """The file's text as markdown; `Unreadable` with the reason when there is none to index."""
    head = stream.read(8)
    stream.seek(0)
    kind = file_kind(name, head)
    if not kind and head.startswith(b"PK"):
        kind = _zip_kind(stream)
    if not kind:
        ext = PurePosixPath(name.lower()).suffix or "without an extension"
        raise Unreadable(f"file type {ext} is not read (PDF, DOCX, PPTX, XLSX, Markdown and text are)")
    reader: Callable[[IO[bytes], _Deadline], str] = _READERS[kind]
    try:
        text = reader(stream, _Deadline(deadline))
    except Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's complaint about this file is this file's problem
        log.info("cannot read %s as %s: %r", name, kind, exc)
        raise Unreadable(f"not a readable {kind.upper()} file ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not text.strip():
        raise Unreadable(f"no text in this {kind.upper()} file" + (" (scanned pages?)" if kind == "pdf" else ""))
    return text.strip("\n") + "\n"


def _zip_kind(stream: IO[bytes]) -> str:
    try:
        with zipfile.ZipFile(stream) as z:
            names = set(z.namelist())
    except zipfile.BadZipFile:
        return ""
    finally:
        stream.seek(0)
    return next((kind for marker, kind in _ZIP_MARKERS.items() if marker in names), "")


def _pdf(stream: IO[bytes], deadline: _Deadline) -> str:
    from pypdf import PdfReader

    reader = PdfReader(stream)
    if reader.is_encrypted and not reader.decrypt(""):
        raise Unreadable("the PDF is password-protected")
    pages = []
    for i, page in enumerate(reader.pages, 1):
        deadline.check(f"page {i}")
        text = (page.extract_text() or "").strip()
        if text:
            pages.append(_escape_headings(text))
    return "\n\n".join(pages)


def _docx(stream: IO[bytes], deadline: _Deadline) -> str:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(stream)
    parts: list[str] = []
    for i, el in enumerate(document.element.body.iterchildren()):
        deadline.check(f"paragraph {i + 1}")
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "p":
            p = Paragraph(el, document)
            text = p.text.strip()
            if not text:
                continue
            style = (p.style.name if p.style is not None else "") or ""
            level = _heading_level(style)
            if level:
                parts.append("#" * level + " " + clean(text))
            elif "List" in style:
                parts.append("- " + clean(text))
            else:
                parts.append(_escape_headings(text))
        elif tag == "tbl":
            rows = [[clean(c.text) for c in row.cells] for row in Table(el, document).rows]
            if table := render(rows, embedded=True):
                parts.append(table)
    return _join(parts)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    if style.startswith("Heading "):
        try:
            return min(max(int(style.split()[1]), 1), 6)
        except (IndexError, ValueError):
            return 0
    return 0


def _pptx(stream: IO[bytes], deadline: _Deadline) -> str:
    from pptx import Presentation

    deck = Presentation(stream)
    slides = []
    for n, slide in enumerate(deck.slides, 1):
        deadline.check(f"slide {n}")
        title_shape = slide.shapes.title
        title = clean(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
        body: list[str] = []
        title_id = title_shape.shape_id if title_shape is not None else None
        for shape in slide.shapes:
            if shape.shape_id == title_id:
                continue
            if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
                body += [clean(p.text) for p in shape.text_frame.paragraphs if p.text.strip()]
            elif getattr(shape, "has_table", False):
                rows = [[clean(c.text) for c in row.cells] for row in shape.table.rows]
                if table := render(rows, embedded=True):
                    body.append(table)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                body.append(clean(notes))
        if title or body:
            slides.append(_join([f"## {title or f'Slide {n}'}", *body]))
    return _join(slides)


def _xlsx(stream: IO[bytes], deadline: _Deadline) -> str:
    from openpyxl import load_workbook

    book = load_workbook(stream, read_only=True, data_only=True)
    try:
        parts = []
        for ws in book.worksheets:
            rows: list[list[str]] = []
            for i, row in enumerate(ws.iter_rows(values_only=True)):
                if i % 500 == 0:
                    deadline.check(f"row {i + 1} of sheet {ws.title}")
                rows.append([clean(v) for v in row])
            if body := render(rows):
                parts.append(f"## {clean(ws.title)}\n\n{body}")
        return "\n\n".join(parts)
    finally:
        book.close()


def _text(stream: IO[bytes], deadline: _Deadline) -> str:
    raw = stream.read()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Unreadable("the text is neither UTF-8 nor GB18030")


def _plain(stream: IO[bytes], deadline: _Deadline) -> str:
    return _escape_headings(_text(stream, deadline))


def _escape_headings(text: str) -> str:
    """Plain text whose lines start with '#' must not turn into headings."""
    return "\n".join("\\" + line if line.lstrip().startswith("#") else line for line in text.splitlines())


def _join(parts: list[str]) -> str:
    return "\n\n".join(p for p in parts if p.strip())


_READERS: dict[str, Any] = {"pdf": _pdf, "docx": _docx, "pptx": _pptx, "xlsx": _xlsx, "md": _text, "txt": _plain}
