"""Event parsing and card rendering on their own (no servers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.answering.models import OtherAsked, Reference, RefResult, Reply
from connectors.feishu.cards import MAX_CARD_BYTES, answer_card, card_bytes, ref_card, streaming_card
from connectors.feishu.events import Ignored, MessageIn, parse_message
from tests.fakes.feishu.im import BOT_OPEN_ID, make_message_event


def test_group_message_for_the_bot_has_its_placeholders_stripped():
    env = make_message_event("部署 @_all 怎么回滚", others=(("Tom", "ou_tom"),), root_id="om_root")
    msg = parse_message(env, BOT_OPEN_ID)

    assert isinstance(msg, MessageIn)
    assert msg.text == "@Tom 部署 怎么回滚"
    assert msg.thread_root == "om_root" and msg.is_group


def test_group_message_without_the_bot_is_ignored_even_when_others_are_mentioned():
    env = make_message_event("hi", mention_bot=False, others=(("Tom", "ou_tom"),))

    assert isinstance(parse_message(env, BOT_OPEN_ID), Ignored)
    assert isinstance(parse_message(make_message_event("hi"), ""), Ignored)  # identity unknown: stay quiet


def test_messages_from_apps_are_ignored():
    env = make_message_event("hi", chat_type="p2p", mention_bot=False)
    env["event"]["sender"]["sender_type"] = "app"

    assert isinstance(parse_message(env, BOT_OPEN_ID), Ignored)


def test_locale_wrapped_post_is_read():
    env = make_message_event("", chat_type="p2p", mention_bot=False, message_type="post")
    env["event"]["message"]["content"] = json.dumps({"zh_cn": {"title": "问题", "content": [
        [{"tag": "text", "text": "VPN "}, {"tag": "a", "text": "门户", "href": "https://x"}],
        [{"tag": "img", "image_key": "img_x"}]]}}, ensure_ascii=False)
    msg = parse_message(env, BOT_OPEN_ID)

    assert isinstance(msg, MessageIn) and msg.text == "问题\nVPN 门户" and msg.thread_root == msg.message_id


def _reply(answer: str, refs: int = 2, **kw: object) -> Reply:
    references = tuple(Reference(f"p{i}", f"页面 {i}", f"https://example.feishu.cn/wiki/n{i}", "摘录" * 100,
                                 ("页面", f"小节 {i}")) for i in range(1, refs + 1))
    return Reply(answer=answer, covered=True, mode="llm", references=references, notice="AI 生成",
                 question_id="q-1", **kw)  # type: ignore[arg-type]


def test_answer_card_links_markers_and_leaves_unknown_ones():
    card = answer_card(_reply("结论一。[1] 结论二。[2][7]", others_asked=(
        OtherAsked("别人问过 <at id=all>", datetime(2026, 1, 2, tzinfo=UTC)),)))
    text = json.dumps(card, ensure_ascii=False)

    assert "<number_tag url='https://example.feishu.cn/wiki/n2'>2</number_tag>[7]" in text
    assert "2026-01-02" in text and "<at id=all>" not in text
    assert card["config"]["update_multi"] is True and card["schema"] == "2.0"


def test_cards_with_thousands_of_references_still_fit():
    card = answer_card(_reply("答案" * 30_000, refs=400))
    refs = ref_card(RefResult("词", tuple(Reference(f"p{i}", "标题" * 40, "https://x/" + "a" * 200, "摘" * 300)
                                          for i in range(500))))

    assert card_bytes(card) <= MAX_CARD_BYTES and card_bytes(refs) <= MAX_CARD_BYTES


def test_streaming_card_closes_an_unfinished_code_fence():
    card = streaming_card("步骤：\n```bash\nwg-quick up", "zh")
    content = card["body"]["elements"][0]["content"]

    assert content.count("```") == 2 and content.endswith("\n```")
