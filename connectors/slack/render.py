"""Replies rendered as Slack Block Kit messages.

Slack refuses a message outright (`invalid_blocks`) when a section's text passes
3,000 characters or a message passes 50 blocks, and has been seen refusing
messages of more than ~13k characters of blocks. So every builder goes through
`pack`: long text is split across sections, and blocks that do not fit one
message spill into further messages (posted in the same thread), never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.answering.conversation import Outcome
from bot.answering.models import OtherAsked, Reference, RefResult, Reply
from bot.answering.texts import Lang, text
from connectors.slack.inbound import FEEDBACK_ACTIONS
from connectors.slack.mrkdwn import escape, link, to_mrkdwn, to_plain
from connectors.slack.split import split_mrkdwn, truncate

Block = dict[str, Any]
SECTION_LIMIT = 3000
MAX_BLOCKS = 50
MESSAGE_CHARS = 11_000  # below the ~13k total at which Slack has answered msg_blocks_too_long
NOTIFICATION_CHARS = 300  # `text=`: what notifications and screen readers show
FEEDBACK_BLOCK_ID = "wikibot_feedback"

@dataclass
class Message:
    """One chat.postMessage / chat.update payload: blocks plus the notification text."""

    blocks: list[Block] = field(default_factory=list)
    text: str = ""

    def kwargs(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "text": self.text or " "}


# ----- block builders --------------------------------------------------------------------------
def sections(mrkdwn: str) -> list[Block]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece}}
            for piece in split_mrkdwn(mrkdwn, SECTION_LIMIT)]


def context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_LIMIT)}]}


def feedback_actions(question_id: str, lang: Lang) -> Block:
    def button(action_id: str, label: str) -> dict[str, Any]:
        return {"type": "button", "action_id": action_id, "value": question_id[:2000],
                "text": {"type": "plain_text", "text": label[:75], "emoji": True}}

    up, down = FEEDBACK_ACTIONS
    return {"type": "actions", "block_id": f"{FEEDBACK_BLOCK_ID}:{lang}",  # the language of the thanks
            "elements": [button(up, text("helpful", lang)), button(down, text("unhelpful", lang))]}


def _block_chars(block: Block) -> int:
    if block["type"] == "section":
        return len(block["text"]["text"])
    if block["type"] == "context":
        return sum(len(e.get("text", "")) for e in block["elements"])
    return 200


def pack(blocks: list[Block], notification: str) -> list[Message]:
    """Blocks as one or more messages, each within Slack's block count and size limits.

    `notification` (markdown) becomes the first message's `text`, which Slack shows in notifications.
    """
    blocks = blocks or sections("…")
    messages: list[Message] = []
    current: list[Block] = []
    size = 0
    for block in blocks:
        chars = _block_chars(block)
        if current and (len(current) >= MAX_BLOCKS or size + chars > MESSAGE_CHARS):
            messages.append(Message(current))
            current, size = [], 0
        current.append(block)
        size += chars
    messages.append(Message(current))
    for i, m in enumerate(messages):
        m.text = (truncate(to_plain(to_mrkdwn(notification)), NOTIFICATION_CHARS) if i == 0 else "") or "…"
    return messages


# ----- messages --------------------------------------------------------------------------------
def outcome(result: Outcome, header: str = "") -> list[Message]:
    """The messages for whatever the conversation decided to show."""
    if isinstance(result, Reply):
        return answer_messages(result, header)
    if isinstance(result, RefResult):
        return ref_messages(result)
    return text_message(result.body, result.language)


def text_message(body: str, lang: Lang = "en") -> list[Message]:
    """Plain bot text (help, status, errors) as mrkdwn sections."""
    return pack(sections(to_mrkdwn(body)) or sections(" "), body)


def placeholder(lang: Lang, header: str = "") -> Message:
    """The message posted at once, before retrieval and generation finish."""
    blocks = ([*sections(header)] if header else []) + [context("_" + text("searching", lang) + "_")]
    return Message(blocks, text("searching", lang))


def streaming(partial: str, lang: Lang, header: str = "") -> Message:
    """The answer so far, while it is being generated: the first message's worth only."""
    body = to_mrkdwn(partial.rstrip() + " …")
    blocks = (sections(header) if header else []) + sections(body) + [context("_" + text("searching", lang) + "_")]
    return pack(blocks, partial)[0]


def answer_messages(reply: Reply, header: str = "") -> list[Message]:
    """The final answer: text, references, others asked, the notice, and the 👍/👎 buttons."""
    lang = reply.language
    blocks: list[Block] = sections(header) if header else []
    blocks += sections(to_mrkdwn(reply.answer, reply.references))
    if reply.references:
        blocks.append({"type": "divider"})
        blocks += sections("*" + escape(text("references", lang)) + "*")
        for n, ref in enumerate(reply.references, 1):
            blocks += sections(reference_mrkdwn(n, ref))
    if reply.others_asked:
        blocks += sections(others_mrkdwn(reply.others_asked, lang))
    if reply.notice:
        blocks.append(context(escape(reply.notice)))
    if reply.question_id:
        blocks.append(feedback_actions(reply.question_id, lang))
    return pack(blocks, reply.answer)


def reference_mrkdwn(n: int, ref: Reference) -> str:
    title = link(ref.url, ref.title) if ref.url else "*" + escape(ref.title) + "*"
    path = [h for h in ref.heading_path if h and h != ref.title]
    where = " › ".join(escape(h) for h in path)
    excerpt = re.sub(r"```|^#{1,6}\s+", "", ref.excerpt, flags=re.MULTILINE)
    excerpt = " ".join(excerpt.split())
    lines = [f"*[{n}]* {title}" + (f" — {where}" if where else "")]
    if excerpt:
        lines.append("> " + truncate(to_mrkdwn(excerpt), 600))
    return "\n".join(lines)


def others_mrkdwn(others: tuple[OtherAsked, ...], lang: Lang) -> str:
    lines = ["*" + escape(text("others_asked", lang)) + "*"]
    for o in others:
        stamp = int(o.asked_at.timestamp())
        when = f"<!date^{stamp}^{{date_short}}|{o.asked_at.date().isoformat()}>"
        lines.append(f"• {escape(' '.join(o.question.split())[:300])} — {when}")
    return "\n".join(lines)


def ref_messages(result: RefResult) -> list[Message]:
    """The `/ref` lookup: matching pages and passages, nothing generated."""
    lang = result.language
    if not result.references:
        return text_message(text("no_refs", lang, q=result.query), lang)
    blocks = sections("*" + escape(text("ref_title", lang, q=result.query[:200])) + "*")
    for n, ref in enumerate(result.references, 1):
        blocks += sections(reference_mrkdwn(n, ref))
    return pack(blocks, text("ref_title", lang, q=result.query[:200]))


def asked_header(user_id: str, question: str, lang: Lang) -> str:
    """Above an `/ask` answer in the channel: the slash command itself is visible to no one else."""
    return text("asked", lang, user=f"<@{user_id}>", q=escape(" ".join(question.split())[:500]))
