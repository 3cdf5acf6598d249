"""Slack events and slash commands as the few facts the bot acts on, or the reason it ignores them.

Kept apart from the listeners so the rules — which messages are questions, which
thread a reply belongs to — read in one place and test without a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.slack.mrkdwn import clean_incoming

FEEDBACK_ACTIONS = {"wikibot_feedback_up": "up", "wikibot_feedback_down": "down"}  # action_id → value


@dataclass(frozen=True)
class Inbound:
    """A question-bearing message: a mention in a channel or a direct message."""

    text: str
    user_id: str
    channel_id: str
    ts: str
    thread_root: str  # the thread the reply goes in: the message's thread_ts, or its own ts
    client_msg_id: str = ""
    is_dm: bool = False

    def dedupe_keys(self) -> list[str]:
        """Both ids of the message: Slack may send it twice (app_mention and message), with two event ids."""
        keys = [f"msg:{self.channel_id}:{self.ts}"]
        if self.client_msg_id:
            keys.append(f"cmid:{self.client_msg_id}")
        return keys


@dataclass(frozen=True)
class Ignored:
    reason: str


def _from_bot(event: dict[str, Any], bot_user_id: str) -> str:
    if event.get("bot_id") or event.get("bot_profile"):
        return "a bot's message"
    if bot_user_id and event.get("user") == bot_user_id:
        return "our own message"
    if not event.get("user"):
        return "no user"
    return ""


def _inbound(event: dict[str, Any], bot_user_id: str, is_dm: bool) -> Inbound | Ignored:
    ts = str(event.get("ts") or "")
    channel = str(event.get("channel") or "")
    if not ts or not channel:
        return Ignored("no channel or ts")
    return Inbound(text=clean_incoming(str(event.get("text") or ""), bot_user_id), user_id=str(event["user"]),
                   channel_id=channel, ts=ts, thread_root=str(event.get("thread_ts") or ts),
                   client_msg_id=str(event.get("client_msg_id") or ""), is_dm=is_dm)


def parse_mention(event: dict[str, Any], bot_user_id: str) -> Inbound | Ignored:
    """`app_mention`: someone @-mentioned the bot in a channel (never sent for DMs)."""
    why = _from_bot(event, bot_user_id)
    if why:
        return Ignored(why)
    return _inbound(event, bot_user_id, is_dm=False)


def parse_message(event: dict[str, Any], bot_user_id: str) -> Inbound | Ignored:
    """`message`: answered only in a DM; channel messages that mention the bot come as `app_mention`."""
    if event.get("subtype"):
        return Ignored(f"subtype {event['subtype']}")  # edits, deletions, joins, bot_message, …
    if event.get("channel_type") != "im":
        return Ignored(f"not a DM ({event.get('channel_type')})")
    why = _from_bot(event, bot_user_id)
    if why:
        return Ignored(why)
    return _inbound(event, bot_user_id, is_dm=True)


@dataclass(frozen=True)
class SlashCommand:
    text: str
    user_id: str
    channel_id: str
    response_url: str
    command: str


def parse_slash(body: dict[str, Any]) -> SlashCommand:
    return SlashCommand(text=clean_incoming(str(body.get("text") or "")), user_id=str(body.get("user_id") or ""),
                        channel_id=str(body.get("channel_id") or ""),
                        response_url=str(body.get("response_url") or ""), command=str(body.get("command") or ""))


@dataclass(frozen=True)
class FeedbackClick:
    question_id: str
    value: str  # "up" | "down"
    user_id: str
    channel_id: str
    lang: str


def parse_feedback(body: dict[str, Any], action: dict[str, Any], actions: dict[str, str]) -> FeedbackClick | Ignored:
    value = actions.get(str(action.get("action_id")))
    if value is None:
        return Ignored("not a feedback button")
    block_id = str(action.get("block_id") or "")
    lang = block_id.rsplit(":", 1)[1] if ":" in block_id else "en"
    return FeedbackClick(question_id=str(action.get("value") or ""), value=value,
                         user_id=str((body.get("user") or {}).get("id") or ""),
                         channel_id=str((body.get("channel") or {}).get("id") or ""),
                         lang="zh" if lang == "zh" else "en")
