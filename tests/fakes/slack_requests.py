"""Requests as Slack sends them to an app: signed Events API, slash command and interactivity posts.

Events are JSON; slash commands are form-encoded; interactivity is a form with
one `payload` field holding JSON. Each is signed like Slack signs it:
`X-Slack-Signature: v0=` + hex HMAC-SHA256(signing secret, `v0:{ts}:{raw body}`)
with `X-Slack-Request-Timestamp: {ts}`; a retry adds `X-Slack-Retry-Num` and
`X-Slack-Retry-Reason`. A `Delivery` keeps the exact bytes, so a test can replay it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

_ids = itertools.count(1)
TEAM_ID = "T0TEAM"
APP_ID = "A0WIKIBOT"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]

    async def send(self, timeout: float = 10.0) -> httpx.Response:
        async with httpx.AsyncClient(timeout=timeout) as http:
            return await http.post(self.url, content=self.body, headers=self.headers)


def signed(url: str, body: bytes, content_type: str, secret: str, *, timestamp: int | None = None,
           retry_num: int | None = None, retry_reason: str = "http_timeout",
           signature: str | None = None) -> Delivery:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": signature if signature is not None else sign(secret, ts, body),
               "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return Delivery(url, body, headers)


def event_request(url: str, envelope: dict[str, Any], secret: str, **kw: Any) -> Delivery:
    return signed(url, json.dumps(envelope).encode(), "application/json", secret, **kw)


def command_request(url: str, form: dict[str, str], secret: str, **kw: Any) -> Delivery:
    return signed(url, urlencode(form).encode(), "application/x-www-form-urlencoded", secret, **kw)


def action_request(url: str, payload: dict[str, Any], secret: str, **kw: Any) -> Delivery:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return signed(url, body, "application/x-www-form-urlencoded", secret, **kw)


# ----- payloads ----------------------------------------------------------------------------------
def new_ts() -> str:
    return f"{int(time.time())}.{next(_ids):06d}"


def envelope(event: dict[str, Any], *, event_id: str | None = None, bot_user_id: str = "UWIKIBOT") -> dict[str, Any]:
    """The Events API `event_callback` envelope around one event."""
    return {"token": "legacy-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": int(time.time()), "event_context": f"4-ctx-{next(_ids)}",
            "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False}


def _rich_text(text: str) -> list[dict[str, Any]]:
    return [{"type": "rich_text", "block_id": f"b{next(_ids)}",
             "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}]


def mention(text: str, *, user: str = "UALICE", channel: str = "CGENERAL", ts: str | None = None,
            thread_ts: str | None = None, client_msg_id: str | None = None,
            bot_user_id: str = "UWIKIBOT") -> dict[str, Any]:
    """An `app_mention` event: `<@bot> text` in a channel."""
    ts = ts or new_ts()
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": f"<@{bot_user_id}> {text}", "ts": ts,
                             "channel": channel, "event_ts": ts, "team": TEAM_ID,
                             "client_msg_id": client_msg_id or f"cmid-{next(_ids)}",
                             "blocks": _rich_text(text)}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def channel_message(text: str, **kw: Any) -> dict[str, Any]:
    """The `message` (message.channels) twin of a mention: same message, another event type."""
    event = mention(text, **kw)
    event.update(type="message", channel_type="channel")
    return event


def dm(text: str, *, user: str = "UALICE", channel: str = "DALICE", ts: str | None = None,
       thread_ts: str | None = None, client_msg_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """A `message` event in the bot's DM (message.im)."""
    ts = ts or new_ts()
    event: dict[str, Any] = {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
                             "channel": channel, "event_ts": ts, "team": TEAM_ID,
                             "client_msg_id": client_msg_id or f"cmid-{next(_ids)}", "blocks": _rich_text(text)}
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return {k: v for k, v in event.items() if v is not None}


def bot_dm(text: str, *, bot_id: str, user: str | None = None, channel: str = "DALICE") -> dict[str, Any]:
    """A message a bot posted (ours or another app's): `bot_id`, `subtype: bot_message` when it has no user."""
    ts = new_ts()
    event: dict[str, Any] = {"type": "message", "channel_type": "im", "text": text, "ts": ts, "channel": channel,
                             "event_ts": ts, "bot_id": bot_id, "app_id": "A0OTHER", "team": TEAM_ID,
                             "bot_profile": {"id": bot_id, "name": "some bot"}}
    if user:
        event["user"] = user
    else:
        event["subtype"] = "bot_message"
    return event


def command_form(command: str, text: str, *, response_url: str, user: str = "UALICE",
                 channel: str = "CGENERAL") -> dict[str, str]:
    """The form fields of a slash command invocation."""
    return {"token": "legacy-verification-token", "team_id": TEAM_ID, "team_domain": "wikibot-test",
            "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": "alice",
            "command": command, "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": f"{next(_ids)}.{next(_ids)}.abcdef"}


def block_actions(action: dict[str, Any], *, message: dict[str, Any], response_url: str, user: str = "UALICE",
                  channel: str = "CGENERAL") -> dict[str, Any]:
    """The `block_actions` payload of a button click on `message`."""
    clicked = {**action, "type": "button", "action_ts": f"{time.time():.6f}"}
    return {"type": "block_actions", "user": {"id": user, "username": "alice", "name": "alice", "team_id": TEAM_ID},
            "api_app_id": APP_ID, "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": message.get("ts"), "channel_id": channel,
                          "is_ephemeral": False},
            "trigger_id": f"{next(_ids)}.{next(_ids)}.abcdef", "team": {"id": TEAM_ID, "domain": "wikibot-test"},
            "channel": {"id": channel, "name": "general"}, "message": message, "response_url": response_url,
            "actions": [clicked]}
