"""The Slack pieces without a network: markdown → mrkdwn, splitting, Block Kit, which events are questions."""

from __future__ import annotations

import pytest

from bot.answering.models import Reference, RefResult, Reply
from connectors.slack import render as blocks
from connectors.slack.inbound import Ignored, Inbound, parse_mention, parse_message
from connectors.slack.mrkdwn import clean_incoming, to_mrkdwn
from connectors.slack.split import split_mrkdwn
from tests.fakes import slack_requests as sr
from tests.fakes.slack_blocks import validate_blocks

REFS = (Reference("deploy", "Release process", "https://wiki.example/wikDeploy", "Argo CD …"),
        Reference("vpn", "VPN guide", "https://wiki.example/wikVPN?a=1&b=2", "WireGuard …"))


@pytest.mark.parametrize("markdown, expected", [
    ("**bold** and *italic* and __also bold__", "*bold* and _italic_ and *also bold*"),
    ("~~gone~~", "~gone~"),
    ("see [the guide](https://x.example/a_b) now", "see <https://x.example/a_b|the guide> now"),
    ("## Heading two", "*Heading two*"),
    ("- one\n* two\n  + nested", "• one\n• two\n  • nested"),
    ("Press Sync.[1][2]", "Press Sync.<https://wiki.example/wikDeploy|[1]><https://wiki.example/wikVPN?a=1&amp;b=2|[2]>"),
    ("[3] stays, no third reference", "[3] stays, no third reference"),
    ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
    ("<!channel> ping <@U123>", "&lt;!channel&gt; ping &lt;@U123&gt;"),
    ("> quoted **text**", "> quoted *text*"),
    ("`**not bold** <x>` but **bold**", "`**not bold** &lt;x&gt;` but *bold*"),
    ("```\n**raw** <b>\n```", "```\n**raw** &lt;b&gt;\n```"),
    ("[click](javascript:alert(1))", "click)"),  # not a live link
    ("---", "──────────"),
])
def test_markdown_becomes_slack_mrkdwn(markdown, expected):
    assert to_mrkdwn(markdown, REFS) == expected


def test_an_unclosed_code_block_is_closed():
    assert to_mrkdwn("```\ncode").endswith("```")


def test_incoming_text_loses_the_bots_mention_and_keeps_the_rest_readable():
    text = "<@UWIKIBOT> ask <@U2|bob> about <#C1|ops> &amp; <https://x.example|this> &lt;now&gt;"
    assert clean_incoming(text, "UWIKIBOT") == "ask @bob about #ops & this (https://x.example) <now>"


def test_split_respects_the_limit_and_keeps_links_and_code_blocks_whole():
    link = "<https://wiki.example/page|a page title>"
    text = ("word " * 700 + link + " ") * 3 + "\n```\n" + "x = 1\n" * 900 + "```\nafter"
    pieces = split_mrkdwn(text, 3000)
    assert all(len(p) <= 3000 for p in pieces)
    assert "".join(pieces).count(link) == 3
    assert all(p.count("```") % 2 == 0 for p in pieces)
    assert pieces[-1].rstrip().endswith("after")


def test_split_of_a_single_unbroken_line():
    pieces = split_mrkdwn("x" * 10_000, 3000)
    assert all(len(p) <= 3000 for p in pieces) and "".join(pieces) == "x" * 10_000


def test_an_answer_always_fits_block_kit():
    reply = Reply(answer=("A long paragraph. " * 400 + "\n\n") * 30, covered=True, mode="llm", references=REFS * 20,
                  notice="n" * 5000, language="en", question_id="q" * 3000)
    messages = blocks.answer_messages(reply)
    assert len(messages) > 1
    for m in messages:
        assert not validate_blocks(m.blocks) and len(m.blocks) <= blocks.MAX_BLOCKS
        assert sum(blocks._block_chars(b) for b in m.blocks) <= blocks.MESSAGE_CHARS
        assert m.text and len(m.text) <= blocks.NOTIFICATION_CHARS


def test_an_empty_reply_is_still_a_valid_message():
    messages = blocks.answer_messages(Reply(answer="", covered=False, mode="extractive"))
    assert len(messages) == 1 and messages[0].text and not validate_blocks(messages[0].blocks)


def test_ref_results_and_the_no_match_case():
    found = blocks.ref_messages(RefResult("vpn", REFS, "en"))
    assert "References: vpn" in str(found[0].blocks) and "wikVPN" in str(found[0].blocks)
    none = blocks.ref_messages(RefResult("zzz", (), "en"))
    assert 'No wiki pages match "zzz"' in str(none[0].blocks)


def test_which_events_are_questions():
    bot = "UWIKIBOT"
    assert isinstance(parse_mention(sr.mention("hi"), bot), Inbound)
    assert isinstance(parse_message(sr.dm("hi"), bot), Inbound)
    assert isinstance(parse_message(sr.channel_message("hi"), bot), Ignored)
    assert isinstance(parse_message(sr.dm("hi", subtype="message_changed"), bot), Ignored)
    assert isinstance(parse_message(sr.dm("hi", user=bot), bot), Ignored)
    assert isinstance(parse_message(sr.bot_dm("hi", bot_id="BX"), bot), Ignored)
    assert isinstance(parse_mention(dict(sr.mention("hi"), bot_id="BX"), bot), Ignored)


def test_thread_root_and_dedupe_keys():
    top = parse_mention(sr.mention("hi", ts="1.1", client_msg_id="c1"), "UWIKIBOT")
    inner = parse_mention(sr.mention("hi", ts="1.2", thread_ts="1.1"), "UWIKIBOT")
    assert isinstance(top, Inbound) and isinstance(inner, Inbound)
    assert top.thread_root == "1.1" and inner.thread_root == "1.1"
    assert top.dedupe_keys() == ["msg:CGENERAL:1.1", "cmid:c1"]
    assert top.text == "hi"
