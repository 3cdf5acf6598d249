"""One interactive deadline for the model: first text fast, the whole answer bounded, no retry after a
timeout, no long `retry-after` waited out; and the coverage verdict runs beside the answer's stream.

The real anthropic SDK against the fake Messages API on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from bot.answering.llm import ClaudeGenerator, LLMError, Passage
from bot.answering.models import Question
from tests.bot.answering.core_fixtures import make_bot
from tests.fakes.anthropic_fixture import fake_anthropic  # noqa: F401
from tests.fakes.anthropic_server import FakeAnthropic

PASSAGES = [Passage("LoRA 微调", "https://wiki.example/wiki/lora", "LoRA 冻结原模型权重，只训练低秩矩阵。")]


@pytest.fixture
async def make_generator(fake_anthropic: FakeAnthropic) -> AsyncIterator[Callable[..., ClaudeGenerator]]:  # noqa: F811
    made: list[ClaudeGenerator] = []

    def make(**kwargs: object) -> ClaudeGenerator:
        options: dict[str, object] = {"base_url": fake_anthropic.url, "timeout_seconds": 60.0, **kwargs}
        made.append(ClaudeGenerator(fake_anthropic.api_key, "claude-test-model", **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for g in made:
        await g.aclose()


async def test_no_first_text_in_time_is_a_timeout_and_is_not_retried(fake_anthropic, make_generator):  # noqa: F811
    fake_anthropic.delay_seconds = 30
    started = time.monotonic()
    with pytest.raises(LLMError) as err:
        await make_generator(max_retries=3, first_text_seconds=0.5).generate("LoRA 是什么？", PASSAGES)
    assert err.value.kind == "timeout" and "first text" in str(err.value)
    assert time.monotonic() - started < 10  # the SDK's own timeout here is 60 s, with 3 retries
    assert len(fake_anthropic.requests) == 1


async def test_an_answer_that_stalls_after_its_first_text_ends_at_the_deadline(fake_anthropic,  # noqa: F811
                                                                               make_generator):
    fake_anthropic.fail_next("stall")
    fake_anthropic.stall_seconds = 30
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    started = time.monotonic()
    with pytest.raises(LLMError) as err:
        await make_generator(max_retries=3, first_text_seconds=5, answer_deadline_seconds=1.5).generate(
            "LoRA 是什么？", PASSAGES, on_text=on_text)
    assert err.value.kind == "timeout" and "rest of the answer" in str(err.value)
    assert seen  # the first text came, then nothing
    assert time.monotonic() - started < 10
    assert len(fake_anthropic.requests) == 1


async def test_a_long_retry_after_is_not_waited_out(fake_anthropic, make_generator):  # noqa: F811
    fake_anthropic.retry_after = "120"
    fake_anthropic.fail_next("rate_limit", times=2)
    started = time.monotonic()
    with pytest.raises(LLMError) as err:
        await make_generator(max_retries=3, max_retry_after_seconds=5).generate("LoRA 是什么？", PASSAGES)
    assert err.value.kind == "rate_limit" and err.value.retry_after == 120
    assert time.monotonic() - started < 5
    assert len(fake_anthropic.requests) == 1


async def test_a_short_retry_after_is_waited_and_retried_once(fake_anthropic, make_generator):  # noqa: F811
    fake_anthropic.retry_after = "0.2"
    fake_anthropic.fail_next("rate_limit", times=1)
    gen = await make_generator(max_retries=1).generate("LoRA 是什么？", PASSAGES)
    assert gen.text and len(fake_anthropic.requests) == 2


async def test_an_overload_without_retry_after_is_retried_with_a_short_backoff(fake_anthropic,  # noqa: F811
                                                                               make_generator):
    fake_anthropic.fail_next("overloaded", times=1)
    gen = await make_generator(max_retries=1).generate("LoRA 是什么？", PASSAGES)
    assert gen.text and len(fake_anthropic.requests) == 2


async def test_a_retry_that_would_not_fit_the_deadline_is_not_made(fake_anthropic, make_generator):  # noqa: F811
    fake_anthropic.retry_after = "3"
    fake_anthropic.fail_next("rate_limit", times=1)
    with pytest.raises(LLMError):
        await make_generator(max_retries=1, answer_deadline_seconds=2).generate("LoRA 是什么？", PASSAGES)
    assert len(fake_anthropic.requests) == 1


# ----- the verdict beside the stream ------------------------------------------------------------------
@pytest.fixture
async def llm_bot(tmp_path, e5_embedder, fake_anthropic):  # noqa: F811
    bot = make_bot(tmp_path, e5_embedder, {"ANTHROPIC_API_KEY": fake_anthropic.api_key,
                                           "ANTHROPIC_BASE_URL": fake_anthropic.url})
    yield bot, fake_anthropic
    await bot.aclose()


async def test_the_verdict_and_the_answer_are_asked_for_side_by_side(llm_bot):
    bot, fake = llm_bot
    fake.delay_seconds = 3.0  # before each answer: one after the other, the second would arrive 3 s later
    first_text: list[float] = []

    async def progress(text: str) -> None:
        first_text.append(time.monotonic())

    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"), on_progress=progress)
    assert reply.mode == "llm" and reply.covered and first_text
    assert len(fake.requests) == 2 and "tool_choice" in fake.requests[0] and len(fake.answer_requests) == 1
    verdict_asked, answer_asked = fake.arrivals
    assert answer_asked - verdict_asked < 3.0  # asked for before the verdict could have come back
    assert first_text[0] > verdict_asked + 3.0  # and its text held back until the verdict landed


async def test_with_a_none_verdict_no_streamed_text_is_shown(llm_bot):
    bot, fake = llm_bot
    fake.tool_input({"verdict": "none", "missing": "H100", "supporting_results": []})
    fake.delay_seconds = 0.5
    shown: list[str] = []

    async def progress(text: str) -> None:
        shown.append(text)

    reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"), on_progress=progress)
    assert reply.covered is False and shown == []


async def test_a_hung_model_gives_the_extractive_answer_after_the_first_text_timeout(tmp_path, e5_embedder,
                                                                                     fake_anthropic):  # noqa: F811
    bot = make_bot(tmp_path, e5_embedder, {"ANTHROPIC_API_KEY": fake_anthropic.api_key,
                                           "ANTHROPIC_BASE_URL": fake_anthropic.url,
                                           "ANTHROPIC_FIRST_TEXT_SECONDS": "1"})
    try:
        fake_anthropic.delay_seconds = 60
        started = time.monotonic()
        reply = await bot.answer(Question("每人最多可以同时申请几张 A100？"))
        assert time.monotonic() - started < 10
        assert reply.mode == "extractive" and reply.degraded_reason == "timeout" and "4 张 A100" in reply.answer
        assert len(fake_anthropic.answer_requests) == 1
    finally:
        await bot.aclose()
