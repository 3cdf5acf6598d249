"""Feishu schema-2.0 events → the adapter's small event types, or a reason to ignore them.

Pure functions over the decoded envelope, shared by the HTTP callback and the long
connection, so both transports make exactly the same decisions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MESSAGE_EVENT = "im.message.receive_v1"
CARD_ACTION_EVENT = "card.action.trigger"
ACK = {"msg": "success"}  # the acknowledgement body of an event callback
READABLE_TYPES = ("text", "post")
_PLACEHOLDER = re.compile(r"@_(?:user_\d+|all)")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


@dataclass(frozen=True)
class MessageIn:
    """A user's message the bot should answer."""

    event_id: str
    message_id: str
    chat_id: str
    chat_type: str  # "p2p" | "group"
    thread_root: str  # the conversation's root message: root_id, or the message itself
    user_id: str  # the sender's open_id
    text: str  # mention placeholders stripped
    message_type: str

    @property
    def is_group(self) -> bool:
        return self.chat_type != "p2p"

    @property
    def readable(self) -> bool:
        return self.message_type in READABLE_TYPES


@dataclass(frozen=True)
class CardActionIn:
    """A click on a card button (card.action.trigger)."""

    event_id: str
    user_id: str
    message_id: str
    chat_id: str
    value: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ignored:
    reason: str


def event_type(envelope: Mapping[str, Any]) -> str:
    header = envelope.get("header")
    if isinstance(header, Mapping):
        return str(header.get("event_type") or "")
    event = envelope.get("event")  # v1 events carry the type inside the event
    return str(event.get("type") or "") if isinstance(event, Mapping) else ""


def event_id(envelope: Mapping[str, Any]) -> str:
    header = envelope.get("header")
    if isinstance(header, Mapping) and header.get("event_id"):
        return str(header["event_id"])
    return str(envelope.get("uuid") or "")


def message_id(envelope: Mapping[str, Any]) -> str:
    msg = _get(envelope, "event", "message")
    return str(msg.get("message_id") or "") if isinstance(msg, Mapping) else ""


def parse_message(envelope: Mapping[str, Any], bot_open_id: str) -> MessageIn | Ignored:
    """Every direct message; a group message only when it @-mentions this bot (by open_id)."""
    event = envelope.get("event")
    if not isinstance(event, Mapping) or not isinstance(event.get("message"), Mapping):
        return Ignored("malformed message event")
    sender = _obj(event.get("sender"))
    if sender.get("sender_type", "user") != "user":
        return Ignored("sent by an app or bot")
    msg = event["message"]
    chat_type = str(msg.get("chat_type") or "")
    mentions = [m for m in (msg.get("mentions") or []) if isinstance(m, Mapping)]
    bot_keys = {str(m.get("key")) for m in mentions if bot_open_id and _open_id(m) == bot_open_id}
    if chat_type != "p2p":
        if not bot_open_id:
            return Ignored("bot identity unknown")
        if not bot_keys:
            return Ignored("group message not addressed to the bot")
    mtype = str(msg.get("message_type") or "")
    text = _message_text(mtype, str(msg.get("content") or ""))
    text = strip_mentions(text, mentions, bot_keys)
    mid = str(msg.get("message_id") or "")
    return MessageIn(
        event_id=event_id(envelope), message_id=mid, chat_id=str(msg.get("chat_id") or ""),
        chat_type=chat_type or "group", thread_root=str(msg.get("root_id") or "") or mid,
        user_id=_open_id(sender.get("sender_id")), text=text, message_type=mtype)


def parse_card_action(envelope: Mapping[str, Any]) -> CardActionIn | Ignored:
    event = envelope.get("event")
    if not isinstance(event, Mapping):
        return Ignored("malformed card action")
    action = _obj(event.get("action"))
    value = action.get("value")
    if isinstance(value, str):  # older clients send the value as a JSON string
        try:
            value = json.loads(value)
        except ValueError:
            value = {}
    context, operator = _obj(event.get("context")), _obj(event.get("operator"))
    return CardActionIn(event_id=event_id(envelope), user_id=str(operator.get("open_id") or ""),
                        message_id=str(context.get("open_message_id") or ""),
                        chat_id=str(context.get("open_chat_id") or ""),
                        value=dict(value) if isinstance(value, Mapping) else {})


def strip_mentions(text: str, mentions: list[Mapping[str, Any]], bot_keys: set[str]) -> str:
    """Drop the bot's own placeholder and @all; other people's become their names."""
    names = {str(m.get("key")): str(m.get("name") or "") for m in mentions}

    def sub(m: re.Match[str]) -> str:
        key = m.group(0)
        if key in bot_keys or key == "@_all" or not names.get(key):
            return " "
        return "@" + names[key]

    text = _PLACEHOLDER.sub(sub, text)
    lines = [_SPACES.sub(" ", ln).strip() for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln).strip()


def _message_text(message_type: str, content: str) -> str:
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    if message_type == "text":
        return str(body.get("text") or "")
    if message_type == "post":
        return _post_text(body)
    return ""


def _post_text(body: Mapping[str, Any]) -> str:
    """A rich-text post flattened to text: paragraphs become lines, @-mentions placeholders."""
    if "content" not in body:  # a locale-wrapped post: {"zh_cn": {...}}
        inner = next((v for v in body.values() if isinstance(v, Mapping) and "content" in v), {})
        body = inner
    lines: list[str] = []
    title = str(body.get("title") or "").strip()
    if title:
        lines.append(title)
    for para in body.get("content") or []:
        parts: list[str] = []
        for el in para if isinstance(para, list) else []:
            if not isinstance(el, Mapping):
                continue
            tag = el.get("tag")
            if tag in ("text", "a", "code_block", "md"):
                parts.append(str(el.get("text") or ""))
            elif tag == "at":
                parts.append(" " + str(el.get("user_id") or "") + " ")
            elif tag == "emotion":
                parts.append("")
        lines.append("".join(parts))
    return "\n".join(lines)


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _open_id(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return ""
    ident = obj.get("id")
    if isinstance(ident, Mapping):
        return str(ident.get("open_id") or "")
    return str(obj.get("open_id") or "")


def _get(obj: Mapping[str, Any], *keys: str) -> Any:
    cur: Any = obj
    for k in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(k)
    return cur
