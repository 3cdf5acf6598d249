"""Office files and PDFs made at run time with the libraries wikibot reads them with (no binaries in git)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject, StreamObject


def _pdf_text(line: str) -> bytes:
    return line.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(pages: Sequence[Sequence[str]], padding_bytes: int = 0) -> bytes:
    """A PDF with one page per item, each line set in Helvetica (ASCII only: a Type1 base font);
    `padding_bytes` of incompressible data in an unused stream makes the file as big as wanted."""
    w = PdfWriter()
    font = w._add_object(DictionaryObject({  # noqa: SLF001 - pypdf has no public way to add an object
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica")}))
    for lines in pages:
        page = w.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        ops = b"BT /F1 11 Tf 14 TL 60 740 Td " + b" ".join(b"(" + _pdf_text(s) + b") Tj T*" for s in lines) + b" ET"
        content = DecodedStreamObject()
        content.set_data(ops)
        page[NameObject("/Contents")] = w._add_object(content)  # noqa: SLF001
    if padding_bytes:
        blob = StreamObject()
        blob._data = os.urandom(padding_bytes)  # noqa: SLF001 - raw bytes, no filter
        blob[NameObject("/Length")] = NumberObject(padding_bytes)
        w._root_object[NameObject("/WikibotPadding")] = w._add_object(blob)  # noqa: SLF001
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def make_docx(title: str, paragraphs: Sequence[str], table: Sequence[Sequence[str]] = ()) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading(title, level=1)
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def make_pptx(slides: Sequence[tuple[str, str, str]]) -> bytes:
    """(title, body, speaker notes) per slide."""
    from pptx import Presentation

    deck = Presentation()
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_xlsx(sheets: dict[str, Sequence[Sequence[object]]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
