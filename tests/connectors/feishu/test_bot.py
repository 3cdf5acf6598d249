"""The Feishu bot end to end: real WikiBot, real lark-oapi, fake Feishu, signed and encrypted callbacks."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from bot.infra.metrics import EVENTS_DEDUPLICATED, FEEDBACK
from bot.answering.texts import text
from tests.connectors.feishu.fixtures import *
from tests.connectors.feishu.fixtures import FeishuHarness, open_harness
from tests.fakes.feishu.im import Sent, card_text


def _buttons(sent: Sent) -> list[dict]:
    found: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "button":
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(sent.card)
    return found


def _mid(event: dict) -> str:
    return event["event"]["message"]["message_id"]


async def test_group_mention_is_answered_in_its_thread_with_references_and_feedback(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？", chat_type="group")
    reply = await feishu.ask(event)

    assert reply.reply_in_thread  # a group answer goes into the question's thread
    assert text("searching", "zh") in card_text(json.loads(reply.content))  # progress shown at once
    final = reply.text()
    assert "参考资料" in final
    assert "(https://example.feishu.cn/wiki/wikcnVPN)" in final  # the title links to the wiki page
    assert "WireGuard" in final
    assert "<number_tag url='https://example.feishu.cn/wiki/wikcnVPN'>1</number_tag>" in final  # [1] → link
    assert text("notice_extractive", "zh") in final
    values = [b["behaviors"][0]["value"] for b in _buttons(reply)]
    assert [v["v"] for v in values] == ["up", "down"]
    assert values[0]["qid"] and feishu.bot.questions.get(values[0]["qid"]) is not None


async def test_mention_of_someone_else_is_ignored(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？", mention_bot=False, others=(("Tom", "ou_tom"),))
    resp = await feishu.deliver(event)
    await feishu.settle()

    assert resp.status_code == 200
    assert feishu.im.sent == []


async def test_mention_of_all_is_not_a_mention_of_the_bot(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？", mention_bot=False, others=(("所有人", "all"),))
    await feishu.deliver(event)
    await feishu.settle()

    assert feishu.im.sent == []


async def test_direct_message_is_answered_without_a_mention(feishu: FeishuHarness):
    event = feishu.im.message_event("怎么发布服务？", chat_type="p2p", mention_bot=False, chat_id="oc_dm01")
    reply = await feishu.ask(event)

    assert not reply.reply_in_thread
    assert "Argo CD" in reply.text()


async def test_mention_placeholders_are_stripped_from_the_question(feishu: FeishuHarness):
    event = feishu.im.message_event("帮我看看 VPN 连接失败怎么办", others=(("Tom", "ou_tom"),))
    await feishu.ask(event)

    logged = [p for p in _logged_questions(feishu)]
    assert logged == ["@Tom 帮我看看 VPN 连接失败怎么办"]


async def test_post_message_with_a_mention_is_answered(feishu: FeishuHarness):
    event = feishu.im.message_event("值班什么时候交接？", message_type="post")
    reply = await feishu.ask(event)

    assert "每周一上午十点" in reply.text()


async def test_duplicate_delivery_is_answered_once(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？")
    before = EVENTS_DEDUPLICATED.labels("feishu")._value.get()
    for _ in range(3):  # Feishu redelivers the same event (each time freshly signed)
        assert (await feishu.deliver(event)).status_code == 200
    same_message = json.loads(json.dumps(event))
    same_message["header"]["event_id"] = "another-event-id"  # the same message under a new event id
    await feishu.deliver(same_message)
    await feishu.settle()

    assert len(feishu.im.replies_to(_mid(event))) == 1
    assert EVENTS_DEDUPLICATED.labels("feishu")._value.get() - before == 3


async def test_retry_after_restart_is_not_answered_again(tmp_path, fake_feishu, embedder):
    first = await open_harness(tmp_path, fake_feishu, embedder)
    event = first.im.message_event("VPN 连接失败怎么办？")
    try:
        await first.ask(event)
    finally:
        await first.close()

    second = await open_harness(tmp_path, fake_feishu, embedder, index_pages=False)  # same data dir
    try:
        assert (await second.deliver(event)).status_code == 200  # Feishu's retry, hours later
        await second.settle()
    finally:
        await second.close()
    assert len(fake_feishu.im.replies_to(_mid(event))) == 1


async def test_ref_command_lists_matching_pages_without_generating(feishu: FeishuHarness):
    questions_before = feishu.bot.questions.count()
    reply = await feishu.ask(feishu.im.message_event("/ref VPN 配置文件"))

    card = reply.text()
    assert "参考资料：VPN 配置文件" in card
    assert "(https://example.feishu.cn/wiki/wikcnVPN)" in card
    assert feishu.bot.questions.count() == questions_before  # nothing asked, nothing generated
    assert "👍" not in card


async def test_help_and_status_commands(feishu: FeishuHarness):
    help_card = (await feishu.ask(feishu.im.message_event("/help"))).text()
    status_card = (await feishu.ask(feishu.im.message_event("/status"))).text()

    assert "/ref" in help_card and "/status" in help_card
    assert "5 个页面" in status_card


async def test_follow_up_in_a_thread_uses_the_earlier_turn(feishu: FeishuHarness):
    first = feishu.im.message_event("怎么发布服务？")
    await feishu.ask(first)
    follow_up = feishu.im.message_event("失败了怎么办？", root_id=_mid(first))  # a reply in that thread
    in_thread = await feishu.ask(follow_up)
    fresh = await feishu.ask(feishu.im.message_event("失败了怎么办？"))  # the same words, a new thread

    assert in_thread.reply_in_thread
    history = feishu.bot.state.history(f"feishu:oc_chat0001:{_mid(first)}")
    assert [t.question for t in history] == ["怎么发布服务？", "失败了怎么办？"]
    assert _first_reference(in_thread) == "https://example.feishu.cn/wiki/wikcnDeploy"  # about deploying
    assert _first_reference(fresh) != _first_reference(in_thread)


async def test_feedback_click_is_recorded_and_acknowledged_with_a_toast(feishu: FeishuHarness):
    reply = await feishu.ask(feishu.im.message_event("怎么发布服务？"))
    value = _buttons(reply)[1]["behaviors"][0]["value"]  # 👎
    before = FEEDBACK.labels("feishu", "down")._value.get()

    click = feishu.im.card_action_event(reply, value, user="ou_clicker")
    resp = await feishu.deliver(click, path="/feishu/card")

    assert resp.status_code == 200
    assert resp.json()["toast"]["type"] == "success"
    assert feishu.bot.questions.get(value["qid"])["feedback"] == {"ou_clicker": "down"}
    assert FEEDBACK.labels("feishu", "down")._value.get() - before == 1


async def test_chat_restricted_to_a_space_never_sees_other_spaces(tmp_path, fake_feishu, embedder):
    h = await open_harness(tmp_path, fake_feishu, embedder, access={"chat_spaces": {"oc_eng": ["eng"]}})
    try:
        restricted = await h.ask(h.im.message_event("工资什么时候发？差旅报销多久内提交？", chat_id="oc_eng"))
        open_chat = await h.ask(h.im.message_event("工资什么时候发？差旅报销多久内提交？", chat_id="oc_all"))
        ref = await h.ask(h.im.message_event("/ref 报销 工资", chat_id="oc_eng"))
    finally:
        await h.close()
    for sent in (restricted, ref):
        assert "wikcnSalary" not in json.dumps(sent.card) and "wikcnLeave" not in json.dumps(sent.card)
        assert "十五日" not in sent.text()
    assert "wikcnSalary" in json.dumps(open_chat.card)


def _first_reference(sent: Sent) -> str:
    for el in sent.card["body"]["elements"]:
        content = el.get("content", "")
        if content.startswith("<number_tag>1</number_tag>"):
            return content.split("](", 1)[1].split(")", 1)[0]
    raise AssertionError("no references in the card")


def _logged_questions(h: FeishuHarness) -> list[str]:
    engine = h.bot.questions.engine
    points, _ = engine.scroll(h.bot.questions.collection, limit=100)
    return [p.payload["question"] for p in points]


async def test_an_unreadable_message_gets_a_polite_reply(feishu: FeishuHarness):
    event = feishu.im.message_event("", chat_type="p2p", mention_bot=False, message_type="image")
    reply = await feishu.ask(event)

    assert "只能读懂文字消息" in reply.text()


async def test_answering_failure_shows_a_short_error_card_and_logs_once(tmp_path, fake_feishu, embedder, caplog):
    from bot.answering.wikibot import WikiBot

    class BrokenBot(WikiBot):
        async def answer(self, question, on_progress=None):  # type: ignore[override]
            raise RuntimeError("index exploded")

    h = await open_harness(tmp_path, fake_feishu, embedder, bot_class=BrokenBot)
    try:
        with caplog.at_level(logging.ERROR):
            reply = await h.ask(h.im.message_event("VPN 连接失败怎么办？"))
    finally:
        await h.close()
    assert text("error", "zh") in reply.text()
    assert "Traceback" not in reply.text() and "index exploded" not in reply.text()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "message=om_" in errors[0].getMessage()


async def test_llm_outage_shows_the_extractive_fallback(tmp_path, fake_feishu, embedder):
    pytest.importorskip("bot.answering.llm")
    with socket.socket() as s:  # a port nobody listens on: the Anthropic API is down
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    h = await open_harness(tmp_path, fake_feishu, embedder, open_bot=True, extra={
        "ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": dead, "ANTHROPIC_MAX_RETRIES": "0",
        "ANTHROPIC_TIMEOUT_SECONDS": "5"})
    try:
        assert h.bot.generator is not None
        reply = await h.ask(h.im.message_event("VPN 连接失败怎么办？"))
    finally:
        await h.close()
    assert text("llm_unavailable", "zh") in reply.text()
    assert "WireGuard" in reply.text() and "参考资料" in reply.text()
    assert reply.card["header"]["template"] == "orange"
