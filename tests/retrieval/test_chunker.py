from retrieval.chunker import chunk_page
from retrieval.pages import Page, parse_markdown_page

PAGE = """---
title: 部署手册
space: ops
path: [运维, 部署]
edited: 2026-10-01T08:00:00+08:00
---
# 部署手册

## 环境准备

第一步安装驱动。第二步安装 CUDA！第三步检查显存？最后重启；然后验证。

- 检查 GPU 型号
- 检查磁盘空间

```bash
nvidia-smi
df -h
```

## 显存估算

| 模型 | 显存 |
|---|---|
| 7B | 16 GB |
| 13B | 28 GB |
"""


def test_front_matter_becomes_page_fields():
    page = parse_markdown_page("deploy", PAGE)
    assert page.title == "部署手册"
    assert page.space == "ops"
    assert page.path == ("运维", "部署")
    assert page.edited_at is not None and page.edited_at.year == 2026
    assert page.body.startswith("# 部署手册")


def test_title_falls_back_to_first_heading_without_front_matter():
    page = parse_markdown_page("x", "# Serving with vLLM\n\nSome text.\n")
    assert page.title == "Serving with vLLM" and page.space == "default"


def test_chunks_follow_headings_and_keep_code_and_tables_whole():
    page = parse_markdown_page("deploy", PAGE)
    chunks = chunk_page(page, size=200, overlap=0)
    paths = [c.heading_path for c in chunks]
    assert ("部署手册", "环境准备") in paths and ("部署手册", "显存估算") in paths
    code = [c for c in chunks if "nvidia-smi" in c.text]
    assert len(code) == 1 and "```bash" in code[0].text and code[0].text.rstrip().endswith("```")
    table = [c for c in chunks if "| 7B |" in c.text]
    assert table and "| 13B | 28 GB |" in table[0].text
    assert all(c.heading_path[-1] != "环境准备" or "13B" not in c.text for c in chunks)


def test_offsets_point_back_into_the_page_body():
    page = parse_markdown_page("deploy", PAGE)
    for c in chunk_page(page, size=120, overlap=30):
        assert page.body[c.start:c.end] == c.text
        assert c.page_id == "deploy"


def test_long_chinese_paragraph_splits_at_sentence_ends_with_overlap():
    sentences = [f"这是第{i}句话，用来测试中文句子边界的切分效果。" for i in range(40)]
    page = Page(id="zh", title="切分", body="# 切分\n\n" + "".join(sentences) + "\n")
    chunks = chunk_page(page, size=150, overlap=50)
    assert len(chunks) > 5
    assert all(len(c.text) <= 150 for c in chunks)
    for c in chunks[:-1]:
        assert c.text.endswith("。"), c.text[-10:]
    # consecutive chunks share the overlapping sentence
    assert chunks[1].text.split("。")[0] in chunks[0].text


def test_oversized_line_is_cut_hard_rather_than_dropped():
    page = Page(id="big", title="big", body="x" * 1000 + "\n")
    chunks = chunk_page(page, size=300, overlap=0)
    assert "".join(c.text for c in chunks) == "x" * 1000
