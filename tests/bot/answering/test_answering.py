"""The answering core as a user meets it: a question in, a reply out (no LLM key: extractive)."""

from __future__ import annotations

import pytest

from bot.answering.models import Question
from tests.bot.answering.core_fixtures import make_bot, wikibot  # noqa: F401


async def test_answer_quotes_the_right_page_with_a_reference(wikibot):
    reply = await wikibot.answer(Question("每人最多可以同时申请几张 A100？"))
    assert reply.covered and reply.mode == "extractive"
    assert reply.references[0].page_id == "gpu-rules"
    assert reply.references[0].url == "https://wiki.example/wiki/gpu-rules"
    assert "4 张 A100" in reply.answer and "[1]" in reply.answer
    assert "4 张 A100" in reply.references[0].excerpt
    assert reply.language == "zh" and "AI" not in reply.notice.split("（")[0] or reply.notice


async def test_english_question_gets_an_english_reply(wikibot):
    reply = await wikibot.answer(Question("How does vLLM manage the KV cache?"))
    assert reply.language == "en" and reply.covered
    assert reply.references[0].page_id == "vllm"
    assert reply.answer.startswith("Here is what the wiki says")


async def test_a_question_the_wiki_does_not_cover_is_declared_so(wikibot):
    reply = await wikibot.answer(Question("公司年假有多少天？报销流程是什么？"))
    assert reply.covered is False
    assert "没有找到" in reply.answer
    assert len(reply.references) <= 3  # the nearest pages, offered as such


async def test_others_asked_lists_similar_earlier_questions_with_dates(wikibot):
    await wikibot.answer(Question("GPU 集群一个任务最长能跑多久？", user_id="u1"))
    await wikibot.answer(Question("vLLM 怎么启动服务？", user_id="u2"))  # covered (the vllm page), less similar
    await wikibot.answer(Question("公司年假有多少天？", user_id="u4"))  # not covered: never offered
    reply = await wikibot.answer(Question("GPU 任务最长可以运行多长时间？", user_id="u3"))
    asked = [o.question for o in reply.others_asked]
    assert asked and asked[0] == "GPU 集群一个任务最长能跑多久？"
    assert "公司年假有多少天？" not in asked
    assert reply.others_asked[0].asked_at.year >= 2026


async def test_others_asked_never_shows_questions_from_spaces_the_chat_cannot_see(wikibot):
    await wikibot.answer(Question("GPU 集群一个任务最长能跑多久？"))
    reply = await wikibot.answer(Question("GPU 任务最长可以运行多长时间？", allowed_spaces=("ml",)))
    assert all("GPU 集群" not in o.question for o in reply.others_asked)
    assert all(r.space == "ml" for r in reply.references)


async def test_restricted_chat_never_sees_other_spaces(wikibot):
    reply = await wikibot.answer(Question("每人最多可以同时申请几张 A100？", allowed_spaces=("ml",)))
    assert all(r.page_id != "gpu-rules" for r in reply.references)
    assert "72 小时" not in reply.answer


async def test_follow_up_in_a_thread_uses_the_earlier_turn(wikibot):
    first = await wikibot.answer(Question("LoRA 的原理是什么？", chat_id="c", thread_id="t1"))
    assert first.references[0].page_id == "lora"
    follow = await wikibot.answer(Question("那它需要多少显存？", chat_id="c", thread_id="t1"))
    assert follow.covered and follow.references[0].page_id == "lora"
    assert "24GB" in follow.answer


@pytest.mark.parametrize("text", ["", "   ", "😀😀👍", "？？！"])
async def test_empty_or_emoji_only_input_gets_a_hint_not_an_error(wikibot, text):
    reply = await wikibot.answer(Question(text))
    assert reply.covered is False and "/help" in reply.answer


async def test_a_very_long_question_is_truncated_and_still_answered(wikibot):
    text = "每人最多可以同时申请几张 A100？" + "请详细说明。" * 3000
    reply = await wikibot.answer(Question(text))
    assert len(text) > 10_000
    assert "问题过长" in reply.answer


async def test_feedback_is_recorded_against_the_question(wikibot):
    reply = await wikibot.answer(Question("vLLM 怎么启动服务？"))
    assert await wikibot.record_feedback(reply.question_id, "u9", "down")
    assert wikibot.questions.get(reply.question_id)["feedback"] == {"u9": "down"}
    assert not await wikibot.record_feedback("not-a-question", "u9", "up")


async def test_reference_lookup_lists_pages_without_generating(wikibot):
    result = await wikibot.ref("QLoRA 显存")
    assert result.references and result.references[0].page_id == "lora"
    assert all(r.url.startswith("https://wiki.example/") for r in result.references)


def test_status_counts_pages_and_chunks(wikibot):
    status = wikibot.status()
    assert status.pages == 4 and status.chunks >= 4 and status.llm is False


async def test_a_planted_link_in_a_wiki_page_never_reaches_the_reply(wikibot):
    reply = await wikibot.answer(Question("GPU 集群申请的补充说明是什么？"))
    assert any(r.page_id == "injection" for r in reply.references)
    rendered = reply.answer + "".join(r.excerpt + r.url for r in reply.references)
    assert "evil.example.com" not in rendered


async def test_one_user_cannot_ask_past_the_hourly_budget(tmp_path, e5_embedder):
    bot = make_bot(tmp_path, e5_embedder, {"LIMITS_QUESTIONS_PER_USER_PER_HOUR": "2"})
    try:
        for _ in range(2):
            assert (await bot.answer(Question("每人最多可以同时申请几张 A100？", platform="slack", user_id="U1"))).covered
        refused = await bot.answer(Question("每人最多可以同时申请几张 A100？", platform="slack", user_id="U1"))
        other = await bot.answer(Question("每人最多可以同时申请几张 A100？", platform="slack", user_id="U2"))
    finally:
        await bot.aclose()
    assert not refused.covered and "太频繁" in refused.answer
    assert other.covered


def test_an_event_id_is_claimed_once_across_a_restart(tmp_path, e5_embedder):
    bot = make_bot(tmp_path, e5_embedder, pages=[])
    assert bot.claim("feishu:event:ev1") is True
    assert bot.claim("feishu:event:ev1") is False
    bot.coordinator.close()
    bot.state.close()
    bot.index.close()
    again = make_bot(tmp_path, e5_embedder, pages=[])
    assert again.claim("feishu:event:ev1") is False
    assert again.claim("feishu:event:ev2") is True
    again.index.close()


def test_an_excerpt_cut_inside_code_keeps_its_code_block_closed():
    from bot.answering.extractive import quote_block

    out = quote_block("安装步骤：\n\n```bash\n" + "pip install vllm\n" * 100 + "```\n", limit=200)
    assert out.count("```") == 2 and out.rstrip().endswith("```")
    assert quote_block("第一句。第二句。") == "> 第一句。第二句。"
