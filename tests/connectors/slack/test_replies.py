"""How replies reach Slack: streaming into the placeholder, rate limits, long answers, the LLM paths."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.answering.wikibot import WikiBot
from bot.answering.models import OtherAsked, Question, Reference, Reply
from tests.connectors.slack.fixtures import *
from tests.connectors.slack.fixtures import all_text, open_harness, wait_until
from tests.fakes import slack_requests as sr
from tests.fakes.anthropic_fixture import fake_anthropic  # noqa: F401
from tests.fakes.slack_blocks import validate_blocks


class StreamingBot(WikiBot):
    """The real answer, preceded by 30 progress calls spread over 1.5 s (a model typing)."""

    async def answer(self, question: Question, on_progress: Any = None) -> Reply:
        words = ["The", "release", "process", "uses", "Argo", "CD", "and", "a", "Sync", "button"]
        for i in range(30):
            if on_progress is not None:
                await on_progress(" ".join(words[: i % len(words) + 1]))
            await asyncio.sleep(0.05)
        return await super().answer(question, on_progress)


LONG_PARAGRAPH = ("Argo CD keeps the cluster in sync with git; **press Sync** to release, see [the guide]"
                  "(https://example.feishu.cn/wiki/wikDeploy) and the notes [1]. ") * 12


class LongBot(WikiBot):
    """A reply far past one message: long paragraphs, a long code block, many references."""

    async def answer(self, question: Question, on_progress: Any = None) -> Reply:
        if on_progress is not None:
            await on_progress(LONG_PARAGRAPH * 20)
        code = "```\n" + "\n".join(f"kubectl rollout undo deployment/app-{i} --to-revision={i}"
                                   for i in range(150)) + "\n```"
        answer = "\n\n".join([f"## Part {i}\n\n{LONG_PARAGRAPH}" for i in range(40)] + [code, "The end [2]."])
        refs = tuple(Reference(f"p{i}", f"Page {i}", f"https://example.feishu.cn/wiki/wikP{i}", "excerpt " * 60,
                               ("Ops", f"Section {i}")) for i in range(8))
        others = tuple(OtherAsked(f"How do I roll back service {i}?", datetime(2026, 11, i + 1, tzinfo=UTC))
                       for i in range(5))
        return Reply(answer=answer, covered=True, mode="llm", references=refs, others_asked=others,
                     notice="AI generated", language="en", question_id="5b0c51d2-3f55-4b0e-9c4b-4b3f4e3a1a10")


async def test_the_answer_streams_into_the_placeholder_at_most_once_a_second(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, stream_interval=1.0, bot_class=StreamingBot)
    try:
        replies = await harness.ask(sr.mention("How do I release to production?"))
        updates = fake_slack.calls_to("chat.update")
        assert 2 <= len(updates) <= 4  # 30 progress calls in 1.5 s, coalesced
        sent = [fake_slack.calls_to("chat.postMessage")[0].at] + [u.at for u in updates]
        assert all(b - a >= 0.95 for a, b in itertools.pairwise(sent))
        assert "Argo CD" in str(updates[0].args["blocks"]) and "…" in str(updates[0].args["blocks"])
        assert replies[0].blocks[-1]["type"] == "actions"  # the final update always lands
    finally:
        await harness.close()


async def test_a_429_on_update_waits_for_retry_after_and_the_answer_still_lands(slack, fake_slack):
    fake_slack.fail_next("chat.update", "ratelimited", retry_after=1)
    replies = await slack.ask(sr.mention("How do I roll back a release?"))
    updates = fake_slack.calls_to("chat.update")
    assert len(updates) == 2 and updates[1].at - updates[0].at >= 1.0
    assert "Argo CD" in all_text(replies) and replies[0].blocks[-1]["type"] == "actions"


async def test_repeated_429s_on_the_final_update_are_waited_out(slack, fake_slack):
    fake_slack.fail_next("chat.update", "ratelimited", retry_after=1, times=3)  # past the SDK's own retries
    replies = await slack.ask(sr.mention("How do I roll back a release?"))
    assert len(fake_slack.calls_to("chat.update")) == 4
    assert "Argo CD" in all_text(replies)


async def test_a_429_on_the_placeholder_is_waited_out_too(slack, fake_slack):
    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    replies = await slack.ask(sr.mention("How do I roll back a release?"))
    assert len(fake_slack.calls_to("chat.postMessage")) == 2 and "Argo CD" in all_text(replies)


async def test_a_slack_error_on_the_placeholder_is_logged_not_raised(slack, fake_slack, caplog):
    fake_slack.fail_next("chat.postMessage", "channel_not_found")
    await slack.ask(sr.mention("How do I roll back a release?"))
    assert not fake_slack.calls_to("chat.update")
    assert "channel_not_found" in caplog.text


async def test_a_long_answer_is_split_within_block_kit_limits(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, bot_class=LongBot)
    try:
        event = sr.mention("Tell me everything about releases")
        replies = await harness.ask(event)
        assert len(replies) >= 3 and all(m.thread_ts == event["ts"] for m in replies)
        for call in fake_slack.calls_to("chat.postMessage") + fake_slack.calls_to("chat.update"):
            assert not validate_blocks(call.args["blocks"]), "every payload within Block Kit limits"
            assert len(call.args["blocks"]) <= 50
            assert all(len(b["text"]["text"]) <= 3000 for b in call.args["blocks"] if b["type"] == "section")
        shown = all_text(replies)
        assert shown.count("*Part ") == 40 and shown.count("kubectl rollout undo") == 150
        assert shown.count("```") % 2 == 0  # a code block cut in two is closed and reopened
        assert "<https://example.feishu.cn/wiki/wikP1|[2]>" in shown and "*[8]*" in shown
        assert "<!date^" in shown and "2026-11-05" in shown  # others asked, with dates
        assert replies[-1].blocks[-1]["type"] == "actions"  # the buttons close the last message
    finally:
        await harness.close()


# ----- with the LLM (the real anthropic SDK against the fake Messages API) --------------------------
def _llm_env(fake: Any) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url, "ANTHROPIC_MAX_RETRIES": "0",
            "ANTHROPIC_TIMEOUT_SECONDS": "10"}


@pytest.fixture
async def llm_slack(tmp_path, fake_slack, usem3_embedder, request):
    """The bot with Claude configured: `.llm` is the fake Messages API it talks to."""
    llm = request.getfixturevalue("fake_anthropic")
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, extra=_llm_env(llm))
    harness.llm = llm  # type: ignore[attr-defined]
    yield harness
    await harness.close()


async def test_an_llm_answer_cites_its_references(llm_slack):
    llm = llm_slack.llm
    replies = await llm_slack.ask(sr.mention("How do I roll back a release?"))
    shown = all_text(replies)
    assert llm.requests and "generated by AI" in shown
    assert "|[1]>" in shown and "*References*" in shown


async def test_an_llm_outage_shows_the_extractive_fallback(llm_slack):
    llm = llm_slack.llm
    llm.fail_next("overloaded", times=3)
    replies = await llm_slack.ask(sr.mention("How do I roll back a release?"))
    shown = all_text(replies)
    assert "AI service is unavailable" in shown and "Argo CD" in shown
    assert "not AI-generated" in shown


async def test_a_follow_up_in_the_thread_sends_the_earlier_turns(llm_slack):
    llm = llm_slack.llm
    first = sr.mention("How do I roll back a release?")
    await llm_slack.ask(first)
    follow = sr.mention("And who presses the button?", thread_ts=first["ts"])
    replies = await llm_slack.ask(follow)
    assert len(replies) == 2  # both answers in the one thread
    sent = llm.answer_requests[-1]["messages"]
    assert "How do I roll back a release?" in str(sent[:-1])
    elsewhere = sr.mention("How do I release to production?")  # a new thread starts afresh
    await llm_slack.ask(elsewhere)
    assert len(llm.answer_requests) == 3 and len(llm.answer_requests[-1]["messages"]) == 1


async def test_a_slow_model_delays_neither_the_ack_nor_the_placeholder(llm_slack):
    llm = llm_slack.llm
    llm.delay_seconds = 3.0
    event = sr.mention("How do I roll back a release?")
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await llm_slack.event(event)
    assert resp.status_code == 200 and loop.time() - started < 1.0
    await wait_until(lambda: llm_slack.replies(event), timeout=2.5)  # the placeholder, before the model answers
    assert "Searching" in llm_slack.replies(event)[0].text
    await llm_slack.settle()
    assert "generated by AI" in all_text(llm_slack.replies(event))


class BrokenBot(WikiBot):
    async def answer(self, question: Question, on_progress: Any = None) -> Reply:
        raise RuntimeError("the index is on fire")


async def test_an_internal_error_replaces_the_placeholder_with_an_apology(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, bot_class=BrokenBot)
    try:
        replies = await harness.ask(sr.mention("How do I roll back a release?"))
        assert "something went wrong" in all_text(replies)
        await harness.command("/ask", "How do I roll back a release?")
        await harness.settle()
        posted = fake_slack.posted("CGENERAL", "")
        assert len(posted) == 1 and "something went wrong" in all_text(posted)
    finally:
        await harness.close()
