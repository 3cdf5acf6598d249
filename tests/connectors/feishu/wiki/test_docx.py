"""Docx blocks → markdown: the structure the chunker needs survives."""

from __future__ import annotations

from connectors.feishu.wiki import blocks_to_markdown
from retrieval.chunker import chunk_page
from retrieval.pages import Page
from tests.fakes.feishu.wiki import markdown_blocks


def run(content, **style):
    return {"text_run": {"content": content, "text_element_style": style}}


class Doc:
    """Builds a flat block list the way the blocks API returns it."""

    def __init__(self):
        self.blocks = [{"block_id": "doxcnDOC", "block_type": 1, "parent_id": "", "children": [],
                        "page": {"elements": [run("Title")]}}]
        self.n = 0

    def add(self, kind, key, payload=None, parent="doxcnDOC"):
        self.n += 1
        bid = f"blk{self.n}"
        b = {"block_id": bid, "block_type": kind, "parent_id": parent}
        if key:
            b[key] = payload if payload is not None else {}
        self.blocks.append(b)
        owner = next(x for x in self.blocks if x["block_id"] == parent)
        owner.setdefault("children", []).append(bid)
        return bid

    def text(self, kind, key, *elements, parent="doxcnDOC", **style):
        return self.add(kind, key, {"elements": list(elements), "style": style}, parent)

    def md(self):
        return blocks_to_markdown(self.blocks)


def test_headings_paragraphs_and_inline_styles():
    d = Doc()
    d.text(3, "heading1", run("安装"))
    d.text(2, "text", run("先运行 "), run("pip install", inline_code=True), run(" 然后看 "),
           run("文档", bold=True, link={"url": "https%3A%2F%2Fexample.com%2Fdocs%3Fa%3D1"}), run("。"))
    d.text(10, "heading8", run("很深的标题"))
    d.text(2, "text", run("见 "), {"mention_doc": {"token": "doxcnX", "obj_type": 22, "title": "另一页",
                                                    "url": "https%3A%2F%2Fx.feishu.cn%2Fwiki%2FX"}},
           {"equation": {"content": "E=mc^2\n"}})
    assert d.md() == ("# 安装\n\n先运行 `pip install` 然后看 [**文档**](https://example.com/docs?a=1)。\n\n"
                      "###### 很深的标题\n\n见 [另一页](https://x.feishu.cn/wiki/X)$E=mc^2$\n")


def test_nested_bullets_ordered_numbering_and_todos():
    d = Doc()
    a = d.text(12, "bullet", run("水果"))
    d.text(12, "bullet", run("苹果"), parent=a)
    b = d.text(12, "bullet", run("香蕉"), parent=a)
    d.text(13, "ordered", run("剥皮"), parent=b, sequence="1")
    d.text(13, "ordered", run("吃"), parent=b, sequence="auto")
    d.text(12, "bullet", run("蔬菜"))
    d.text(13, "ordered", run("第一步"), sequence="1")
    d.text(13, "ordered", run("第二步"), sequence="auto")
    d.text(13, "ordered", run("第三步"), sequence="auto")
    d.text(17, "todo", run("写文档"), done=True)
    d.text(17, "todo", run("发版"), done=False)
    assert d.md() == ("- 水果\n  - 苹果\n  - 香蕉\n    1. 剥皮\n    2. 吃\n- 蔬菜\n\n"
                      "1. 第一步\n2. 第二步\n3. 第三步\n\n- [x] 写文档\n- [ ] 发版\n")


def test_code_keeps_its_language_and_text_untouched():
    d = Doc()
    d.text(14, "code", run("def f(x):\n"), run("    return x * 2", bold=True), language=49, wrap=False)
    d.text(14, "code", run("SELECT 1;"), language=56)
    d.text(14, "code", run("plain"), language=1)
    assert d.md() == ("```python\ndef f(x):\n    return x * 2\n```\n\n```sql\nSELECT 1;\n```\n\n"
                      "```\nplain\n```\n")


def test_quotes_callouts_and_dividers():
    d = Doc()
    d.text(15, "quote", run("旧式引用"))
    q = d.add(34, "quote_container")
    d.text(2, "text", run("第一行"), parent=q)
    d.text(2, "text", run("第二行"), parent=q)
    d.add(22, "divider")
    c = d.add(19, "callout", {"background_color": 5, "emoji_id": "bulb"})
    d.text(2, "text", run("注意：周末不发版。"), parent=c)
    assert d.md() == "> 旧式引用\n\n> 第一行\n>\n> 第二行\n\n---\n\n> 注意：周末不发版。\n"


def test_tables_become_markdown_tables():
    d = Doc()
    t = d.add(31, "table", {"cells": [], "property": {"row_size": 2, "column_size": 2}})
    for text in ("参数", "含义", "lr | rate", "学习率"):
        cell = d.add(32, "table_cell", {}, parent=t)
        next(b for b in d.blocks if b["block_id"] == t)["table"]["cells"].append(cell)
        d.text(2, "text", run(text), parent=cell)
    assert d.md() == "| 参数 | 含义 |\n|---|---|\n| lr \\| rate | 学习率 |\n"


def test_unknown_and_textless_blocks_are_skipped_but_their_children_kept():
    d = Doc()
    d.add(27, "image", {"token": "boxcnIMG", "width": 100, "height": 100})
    d.add(30, "sheet", {"token": "shtcnX"})
    grid = d.add(24, "grid", {"column_size": 2})
    col = d.add(25, "grid_column", {"width_ratio": 50}, parent=grid)
    d.text(2, "text", run("分栏里的字"), parent=col)
    odd = d.add(999, "undefined", {})
    d.text(2, "text", run("未知块里的字"), parent=odd)
    d.add(43, "board", {"token": "x"})
    assert d.md() == "分栏里的字\n\n未知块里的字\n"


def test_an_empty_document_is_empty():
    assert blocks_to_markdown([]) == ""
    assert blocks_to_markdown(Doc().blocks) == ""


def test_a_page_written_in_markdown_survives_the_round_trip_and_chunks_on_its_headings():
    body = ("## 原理\n\nLoRA 加入**低秩**矩阵，见 [论文](https://arxiv.org/abs/2106.09685)。\n\n"
            "- 冻结权重\n  - 只训练 A、B\n- 省显存\n\n"
            "## 用法\n\n```python\nmodel = get_peft_model(model, config)\n```\n\n"
            "| 参数 | 值 |\n|---|---|\n| r | 8 |\n\n> [!NOTE]\n> 学习率要小。\n")
    md = blocks_to_markdown(markdown_blocks("doxcnDOC", "LoRA", body))
    assert md == body.replace("> [!NOTE]\n", "")
    chunks = chunk_page(Page(id="p", title="LoRA", body=md), 480, 0)
    assert [c.heading_path[-1] for c in chunks] == ["原理", "用法"]


def test_plain_text_that_looks_like_a_heading_is_not_cut_as_one():
    d = Doc()
    d.text(2, "text", run("# 不是标题"))
    md = d.md()
    assert md == "\\# 不是标题\n"
    assert chunk_page(Page(id="p", title="T", body=md), 480, 0)[0].heading_path in ((), ("T",))
