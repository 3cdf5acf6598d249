"""The one handler behind both transports: acknowledge at once, answer in the background.

Feishu redelivers an event it thinks was not acknowledged within 3 s (and
sometimes one that was), for hours. So the acknowledgement path only claims the
event id and the message id with the core's coordinator (SQLite, or Redis for
several replicas: a repeat of either is dropped, across restarts too) and starts
a task; the task decides whether the message is for the bot, asks the core, and
streams the reply card. A claimed question is answered at most once: if the
process dies mid-answer the user asks again, rather than risking two answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.answering.conversation import Incoming, respond
from bot.answering.texts import Lang, text
from bot.answering.wikibot import WikiBot
from bot.infra.metrics import EVENTS_DEDUPLICATED, FEEDBACK
from connectors.feishu.api import FeishuApi
from connectors.feishu.events import (
    ACK,
    CARD_ACTION_EVENT,
    MESSAGE_EVENT,
    Ignored,
    MessageIn,
    event_id,
    event_type,
    message_id,
    parse_card_action,
    parse_message,
)
from connectors.feishu.replier import CardChannel, CardStream

log = logging.getLogger(__name__)
SEEN_TTL_SECONDS = 7 * 24 * 3600  # Feishu retries for ~7 h; keep ids well past that


class FeishuHandler:
    def __init__(self, bot: WikiBot, api: FeishuApi, *, stream_interval: float = 0.5,
                 card_timeout: float = 2.0) -> None:
        self.bot = bot
        self.api = api
        self.stream_interval = stream_interval
        self.card_timeout = card_timeout
        self.bot_open_id = ""
        self._identity_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def handle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Acknowledge one event (the reply body for Feishu); any answering continues in a task."""
        kind = event_type(envelope)
        if kind == CARD_ACTION_EVENT:
            return await self._card_action(envelope)
        if kind != MESSAGE_EVENT:
            log.debug("feishu: ignoring event type %r", kind)
            return dict(ACK)
        eid, mid = event_id(envelope), message_id(envelope)
        if not (self._claim("event", eid) and self._claim("message", mid)):
            EVENTS_DEDUPLICATED.labels("feishu").inc()
            log.info("feishu: repeated delivery dropped (event %s, message %s)", eid, mid)
            return dict(ACK)
        self._spawn(self._process(envelope))
        return dict(ACK)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (bounded) for answers in progress; used on shutdown and by tests."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def identity(self) -> str:
        """The bot's open_id, fetched once; '' while the bot info API is unreachable."""
        if self.bot_open_id:
            return self.bot_open_id
        self._identity_lock = self._identity_lock or asyncio.Lock()
        async with self._identity_lock:
            if not self.bot_open_id:
                try:
                    self.bot_open_id = await self.api.bot_open_id()
                except Exception as exc:
                    log.warning("feishu: bot info unavailable (%s); group messages are ignored until it is",
                                exc)
        return self.bot_open_id

    # ----- messages ---------------------------------------------------------------------------
    async def _process(self, envelope: dict[str, Any]) -> None:
        try:
            parsed = parse_message(envelope, await self.identity())
        except Exception:
            log.exception("feishu: unreadable message event %s", event_id(envelope))
            return
        if isinstance(parsed, Ignored):
            log.debug("feishu: event %s ignored: %s", event_id(envelope), parsed.reason)
            return
        await self._respond(parsed)

    async def _respond(self, msg: MessageIn) -> None:
        incoming = Incoming(text=msg.text, platform="feishu", user_id=msg.user_id, chat_id=msg.chat_id,
                            thread_id=msg.thread_root, message_id=msg.message_id, readable=msg.readable,
                            group=msg.is_group,
                            log_context={"event_id": msg.event_id, "message_id": msg.message_id,
                                         "chat_id": msg.chat_id, "user_id": msg.user_id})
        stream = CardStream(self.api, msg.message_id, in_thread=msg.is_group, min_interval=self.stream_interval,
                            context=f"event={msg.event_id} message={msg.message_id} chat={msg.chat_id}")
        await respond(self.bot, incoming, CardChannel(stream))

    # ----- card buttons -----------------------------------------------------------------------
    async def _card_action(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """A 👍/👎 click: record it and answer with a toast within Feishu's 3 s."""
        action = parse_card_action(envelope)
        if isinstance(action, Ignored) or action.value.get("action") != "feedback":
            return {}
        value, qid = str(action.value.get("v")), str(action.value.get("qid") or "")
        lang: Lang = "en" if action.value.get("lang") == "en" else "zh"
        if value not in ("up", "down"):
            return {}
        if not self._claim("card", action.event_id):
            return _toast("success", text("thanks", lang))
        try:
            known = await asyncio.wait_for(self.bot.record_feedback(qid, action.user_id, value),  # type: ignore[arg-type]
                                           timeout=self.card_timeout)
        except TimeoutError:
            known = True  # the write continues in its thread; answer before Feishu gives up
        except Exception:
            log.exception("feishu: recording feedback failed (question=%s user=%s)", qid, action.user_id)
            return _toast("error", text("error", lang))
        if not known:
            return _toast("info", text("unknown_question", lang))
        FEEDBACK.labels("feishu", value).inc()
        return _toast("success", text("thanks", lang))

    # ----- helpers ----------------------------------------------------------------------------
    def _claim(self, kind: str, key: str) -> bool:
        return not key or self.bot.claim(f"feishu:{kind}:{key}", SEEN_TTL_SECONDS)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _toast(kind: str, content: str) -> dict[str, Any]:
    return {"toast": {"type": kind, "content": content}}
