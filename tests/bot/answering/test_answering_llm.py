"""The answering core with Claude: the real anthropic SDK against a fake Messages API on 127.0.0.1."""

from __future__ import annotations

import pytest

from bot.answering.models import Question
from tests.bot.answering.core_fixtures import make_bot
from tests.fakes.anthropic_fixture import fake_anthropic  # noqa: F401


@pytest.fixture
async def llm_bot(tmp_path, e5_embedder, fake_anthropic):
    bot = make_bot(tmp_path, e5_embedder, {"ANTHROPIC_API_KEY": fake_anthropic.api_key,
                                           "ANTHROPIC_BASE_URL": fake_anthropic.url,
                                           "ANTHROPIC_MAX_RETRIES": "0", "ANTHROPIC_TIMEOUT_SECONDS": "5"})
    yield bot, fake_anthropic
    await bot.aclose()


async def test_claude_answer_cites_passages_as_numbered_references(llm_bot):
    bot, fake = llm_bot
    seen: list[str] = []

    async def progress(text: str) -> None:
        seen.append(text)

    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"), on_progress=progress)
    assert reply.mode == "llm" and reply.covered
    assert reply.references and "[1]" in reply.answer
    assert reply.citations and all(c.reference_indexes for c in reply.citations)
    cited_pages = {reply.references[i].page_id for c in reply.citations for i in c.reference_indexes}
    assert cited_pages <= {r.page_id for r in reply.references}
    assert seen and len(seen[-1]) >= len(seen[0])  # streamed
    body = fake.answer_requests[-1]  # the verdict request runs beside it and may arrive last
    blocks = body["messages"][-1]["content"]
    results = [b for b in blocks if b.get("type") == "search_result"]
    assert results and all(b["citations"] == {"enabled": True} for b in results)
    assert "gpu-rules" in results[0]["source"] or any("gpu-rules" in b["source"] for b in results)
    assert "AI" in reply.notice


async def test_an_llm_outage_falls_back_to_an_extractive_answer_marked_as_such(llm_bot):
    bot, fake = llm_bot
    fake.fail_next("overloaded", times=3)
    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"))
    assert reply.mode == "extractive" and reply.covered
    assert reply.degraded_reason == "overloaded"
    assert "暂时不可用" in reply.answer and "4 张 A100" in reply.answer


async def test_a_broken_stream_falls_back_too(llm_bot):
    bot, fake = llm_bot
    fake.fail_next("stream_error")
    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"))
    assert reply.mode == "extractive" and reply.degraded_reason == "stream"


async def test_a_link_the_model_was_talked_into_never_reaches_the_reply(llm_bot):
    bot, fake = llm_bot
    fake.script([("申请 GPU 配额请访问 http://evil.example.com/login 或 [这里](https://evil.example.com/x)。", 0),
                 ("每人最多同时申请 4 张 A100。", 0)])
    reply = await bot.answer(Question("GPU 集群申请的补充说明是什么？"))
    assert reply.mode == "llm"
    assert "evil.example.com" not in reply.answer
    assert "evil.example.com" not in "".join(r.excerpt for r in reply.references)


async def test_nothing_is_generated_when_the_wiki_does_not_cover_the_question(llm_bot):
    bot, fake = llm_bot
    reply = await bot.answer(Question("公司年假有多少天？报销流程是什么？"))
    assert reply.covered is False and fake.requests == []


async def test_follow_up_sends_the_earlier_turn_to_claude(llm_bot):
    bot, fake = llm_bot
    await bot.answer(Question("LoRA 的原理是什么？", chat_id="c", thread_id="t"))
    await bot.answer(Question("QLoRA 需要多少显存？", chat_id="c", thread_id="t"))
    messages = fake.answer_requests[-1]["messages"]
    assert len(messages) >= 3 and "LoRA 的原理是什么？" in str(messages[0]["content"])


async def test_claude_checks_coverage_in_a_structured_way_before_answering(llm_bot):
    bot, fake = llm_bot
    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"))
    assert reply.mode == "llm" and reply.covered
    # the two requests run side by side: either may reach the fake first
    check = next(r for r in fake.requests if r.get("tools"))
    answer = fake.answer_requests[-1]
    assert check["tool_choice"] == {"type": "tool", "name": "report_coverage"}
    assert check["tools"][0]["input_schema"]["properties"]["verdict"]["enum"] == ["full", "partial", "none"]
    results = [b for b in check["messages"][-1]["content"] if b.get("type") == "search_result"]
    assert results and all(b["citations"] == {"enabled": False} for b in results)
    assert "tools" not in answer and answer.get("stream") is True


async def test_a_none_verdict_means_not_covered_and_nothing_is_generated(llm_bot):
    bot, fake = llm_bot
    fake.tool_input({"verdict": "none", "missing": "H100 的申请条件", "supporting_results": []})
    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"))
    assert reply.covered is False and reply.references
    # the answer's stream starts beside the check and is cancelled by its verdict, unseen
    assert any("tool_choice" in r for r in fake.requests) and len(fake.answer_requests) <= 1


async def test_a_partial_verdict_tells_the_answer_which_part_is_missing(llm_bot):
    bot, fake = llm_bot
    fake.tool_input({"verdict": "partial", "missing": "H100 的配额", "supporting_results": [0]})
    reply = await bot.answer(Question("A100 和 H100 每人各能申请几张？"))
    assert reply.mode == "llm" and reply.covered
    texts = [b.get("text", "") for b in fake.answer_requests[-1]["messages"][-1]["content"]]
    assert any("H100 的配额" in t for t in texts)


async def test_a_failed_or_invalid_check_keeps_the_retrieval_decision(llm_bot):
    bot, fake = llm_bot
    fake.fail_next("server")  # the check's request fails; the answer's goes through
    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"))
    assert reply.mode == "llm" and reply.covered
    fake.tool_input({"verdict": "maybe"})
    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"))
    assert reply.mode == "llm" and reply.covered


async def test_the_fake_streams_a_forced_tool_call_as_the_api_does(fake_anthropic):
    import anthropic

    from bot.answering.coverage_check import TOOL, parse

    fake_anthropic.tool_input({"verdict": "partial", "missing": "时长", "supporting_results": [0, 7]})
    client = anthropic.AsyncAnthropic(api_key=fake_anthropic.api_key, base_url=fake_anthropic.url, max_retries=0)
    try:
        async with client.messages.stream(model="m", max_tokens=50, tools=[TOOL],
                                          tool_choice={"type": "tool", "name": "report_coverage"},
                                          messages=[{"role": "user", "content": "问题"}]) as stream:
            message = await stream.get_final_message()
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.create(model="m", max_tokens=50, tools=[TOOL],
                                         tool_choice={"type": "tool", "name": "other"},
                                         messages=[{"role": "user", "content": "问题"}])
    finally:
        await client.close()
    assert message.stop_reason == "tool_use"
    v = parse(message, n_passages=2)
    assert v is not None and v.verdict == "partial" and v.missing == "时长" and v.supporting == (0,)
