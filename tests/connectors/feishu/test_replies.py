"""Reply cards: streaming within Feishu's rate limits, rate-limit answers, odd input and odd answers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json

from bot.answering.wikibot import WikiBot
from bot.answering.texts import text
from connectors.feishu.cards import card_bytes
from tests.connectors.feishu.fixtures import *
from tests.connectors.feishu.fixtures import FeishuHarness, open_harness
from tests.fakes.feishu.im import CARD_LIMIT_BYTES


class ScriptedBot(WikiBot):
    """The real core (retrieval, references, question log), with a scripted stream and answer text."""

    partials: tuple[str, ...] = ()
    pause = 0.0
    final_answer: str | None = None

    async def answer(self, question, on_progress=None):  # type: ignore[override]
        for partial in self.partials:
            if on_progress is not None:
                await on_progress(partial)
            await asyncio.sleep(self.pause)
        reply = await super().answer(question)
        return dataclasses.replace(reply, answer=self.final_answer) if self.final_answer is not None else reply


def scripted(**attrs: object) -> type[ScriptedBot]:
    return type("Scripted", (ScriptedBot,), attrs)


async def test_streamed_answer_updates_the_card_at_most_twice_a_second(tmp_path, fake_feishu, embedder):
    words = [f"第{i}步，" for i in range(40)]
    partials = tuple("".join(words[: i + 1]) for i in range(len(words)))  # 40 chunks over ~2 s
    bot_class = scripted(partials=partials, pause=0.05, final_answer=partials[-1] + "完成。[1]")
    h = await open_harness(tmp_path, fake_feishu, embedder, bot_class=bot_class, stream_interval=0.5)
    try:
        reply = await h.ask(h.im.message_event("VPN 连接失败怎么办？"))
    finally:
        await h.close()

    times = [t for t, _ in reply.updates]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 3 <= len(times) <= 7, times  # a few streamed updates plus the final one, not 40
    assert min(gaps) >= 0.4
    assert "第39步，完成。" in reply.text() and "参考资料" in reply.text()  # the final card is always sent
    streamed = [json.loads(c) for _, c in reply.updates[:-1]]
    assert any("第" in json.dumps(c, ensure_ascii=False) for c in streamed)
    assert h.im.limit_hits == 0


async def test_rate_limited_reply_is_retried_after_the_reset_and_delivered(feishu: FeishuHarness):
    feishu.fake.inject("/reply", status=429, headers={"x-ogw-ratelimit-limit": "5", "x-ogw-ratelimit-reset": "1"})
    feishu.fake.inject("/messages/om_bot", status=400)  # the card update (PATCH) too, older-API style
    event = feishu.im.message_event("VPN 连接失败怎么办？")
    reply = await feishu.ask(event)

    reply_calls = [t for m, p, t in feishu.fake.requests if p.endswith("/reply")]
    assert len(reply_calls) == 2 and reply_calls[1] - reply_calls[0] >= 0.9  # waited x-ogw-ratelimit-reset
    assert "WireGuard" in reply.text()  # the final card still arrived
    assert feishu.adapter.api.rate_limited == 2


async def test_unthrottled_updates_are_held_back_by_feishu_and_still_delivered(tmp_path, fake_feishu, embedder):
    partials = tuple(f"部分 {i}" for i in range(12))
    h = await open_harness(tmp_path, fake_feishu, embedder, bot_class=scripted(partials=partials, pause=0.02),
                           stream_interval=0.0)
    try:
        reply = await h.ask(h.im.message_event("VPN 连接失败怎么办？"))
    finally:
        await h.close()
    assert h.im.limit_hits >= 1  # the fake enforced 5 updates/s on this card
    assert "WireGuard" in reply.text()


async def test_long_answer_is_trimmed_to_fit_a_card(tmp_path, fake_feishu, embedder):
    long_answer = "\n\n".join(f"第 {i} 段：" + "很长的说明文字。" * 40 for i in range(400))  # ~130k chars
    h = await open_harness(tmp_path, fake_feishu, embedder, bot_class=scripted(final_answer=long_answer))
    try:
        reply = await h.ask(h.im.message_event("VPN 连接失败怎么办？"))
    finally:
        await h.close()
    assert card_bytes(reply.card) < CARD_LIMIT_BYTES
    assert "已截断" in reply.text() and "第 0 段" in reply.text()
    assert "参考资料" in reply.text()


async def test_markdown_a_card_cannot_show_is_made_safe(tmp_path, fake_feishu, embedder):
    answer = ("<at id=all></at> 请看 ![架构图](https://img.example.com/a.png) 和 [脚本](javascript:alert(1))，"
              "以及 <font color='red'>红字</font>。[1]\n\n```\n<keep this> [1]\n```")
    h = await open_harness(tmp_path, fake_feishu, embedder, bot_class=scripted(final_answer=answer))
    try:
        reply = await h.ask(h.im.message_event("VPN 连接失败怎么办？"))
    finally:
        await h.close()
    shown = reply.card["body"]["elements"][0]["content"]
    assert "<at" not in shown and "<font" not in shown  # no @all, no smuggled tags
    assert "![" not in shown and "javascript:" not in shown
    assert "架构图" in shown and "脚本" in shown
    assert "<number_tag url='https://example.feishu.cn/wiki/wikcnVPN'>1</number_tag>" in shown
    assert "<keep this> [1]" in shown  # code is shown as written


async def test_ten_thousand_character_question_is_answered_from_its_start(feishu: FeishuHarness):
    question = "VPN 连接失败怎么办？" + "请详细说明。" * 2000
    assert len(question) > 10_000
    reply = await feishu.ask(feishu.im.message_event(question))

    assert text("truncated", "zh", n=2000) in reply.text()
    assert "WireGuard" in reply.text()


async def test_only_emoji_gets_a_usage_hint_without_a_progress_card(feishu: FeishuHarness):
    reply = await feishu.ask(feishu.im.message_event("😀🎉👍", chat_type="p2p", mention_bot=False))

    assert text("empty_question", "zh") in reply.text()
    assert reply.updates == []  # answered at once: no "searching" card first


async def test_only_a_mention_gets_a_usage_hint(feishu: FeishuHarness):
    reply = await feishu.ask(feishu.im.message_event(""))

    assert text("empty_question", "zh") in reply.text()
    assert "Traceback" not in reply.text()
