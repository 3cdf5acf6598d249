"""Text out of files: each format, and every way a file can fail to give any (a reason, never a crash)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from pypdf import PdfReader, PdfWriter

from connectors.feishu.wiki.extract import Unreadable, extract_text
from tests.connectors.feishu.wiki.filegen import make_docx, make_pdf, make_pptx, make_xlsx

def read(data: bytes, name: str, deadline: float | None = None) -> str:
    return extract_text(io.BytesIO(data), name, time.monotonic() + 60 if deadline is None else deadline)


def test_office_files_keep_headings_tables_notes_and_rows_with_their_column_names():
    docx = read(make_docx("报销流程", ["发票需要在 30 天内提交。"], [["类别", "上限"], ["餐饮", "200 元"]]), "a.docx")
    assert docx.startswith("# 报销流程\n\n发票需要在 30 天内提交。") and "| 餐饮 | 200 元 |" in docx
    pptx = read(make_pptx([("季度目标", "完成 GPU 集群扩容", "讲者备注：预算 300 万")]), "b.pptx")
    assert pptx == "## 季度目标\n\n完成 GPU 集群扩容\n\n讲者备注：预算 300 万\n"
    xlsx = read(make_xlsx({"库存": [["物品", "数量"], ["显卡", 12], [None, None], ["硬盘", 40.0]]}), "c.xlsx")
    assert xlsx == "## 库存\n\n- 物品: 显卡；数量: 12\n- 物品: 硬盘；数量: 40\n"


def test_the_format_is_found_by_content_when_the_name_says_nothing():
    assert "显卡" in read(make_xlsx({"S": [["物品"], ["显卡"]]}), "inventory")
    assert "Hello" in read(make_pdf([["Hello PDF"]]), "scan-0001")


def test_plain_text_in_gb18030_is_read_and_cannot_fake_headings():
    assert read("# 不是标题\n正文。\n".encode("gb18030"), "notes.txt") == "\\# 不是标题\n正文。\n"
    assert read("# 是标题\n".encode(), "notes.md") == "# 是标题\n"


def test_an_encrypted_pdf_is_unreadable_with_the_reason():
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["secret"]]))))
    w.encrypt("pw")
    out = io.BytesIO()
    w.write(out)
    with pytest.raises(Unreadable, match="password-protected"):
        read(out.getvalue(), "locked.pdf")


@pytest.mark.parametrize("data, name, reason", [
    (b"%PDF-1.4 garbage", "x.pdf", "not a readable PDF"),
    (b"\x89PNG\r\n\x1a\n", "x.png", "file type .png is not read"),
    (b"", "empty.txt", "no text"),
    (make_pdf([[]]), "blank.pdf", "no text in this PDF file (scanned pages?)"),
])
def test_files_without_text_say_why(data, name, reason):
    with pytest.raises(Unreadable, match=reason.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        read(data, name)


def test_a_zip_that_is_no_office_file_is_not_read():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(Unreadable, match="not read"):
        read(buf.getvalue(), "archive")


def test_reading_stops_at_the_deadline():
    with pytest.raises(Unreadable, match="took too long"):
        read(make_pdf([["one"], ["two"]]), "slow.pdf", deadline=time.monotonic() - 1)
