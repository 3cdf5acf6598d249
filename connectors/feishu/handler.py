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
import time
import logging
from collections.abc import Coroutine
from typing import Any

from bot.answering.commands import format_status, parse_command
from bot.answering.wikibot import WikiBot
from bot.answering.language import detect_language, has_words
from bot.infra.metrics import EVENTS_DEDUPLICATED, FEEDBACK
from bot.answering.models import Question
from bot.answering.texts import Lang, text
from connectors.feishu import cards
from connectors.feishu.api import FeishuApi
from connectors.feishu.events import (
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
from connectors.feishu.replier import CardStream

log = logging.getLogger(__name__)
_ACK = {"msg": "success"}
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
            return dict(_ACK)
        eid, mid = event_id(envelope), message_id(envelope)
        if not (self._claim("event", eid) and self._claim("message", mid)):
            EVENTS_DEDUPLICATED.labels("feishu").inc()
            log.info("feishu: repeated delivery dropped (event %s, message %s)", eid, mid)
            return dict(_ACK)
        self._spawn(self._process(envelope))
        return dict(_ACK)

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
        command = parse_command(msg.text)
        lang = detect_language(command.argument)  # "/help" says nothing about the user's language
        context = f"event={msg.event_id} message={msg.message_id} chat={msg.chat_id} user={msg.user_id}"
        stream = CardStream(self.api, msg.message_id, in_thread=msg.is_group,
                            min_interval=self.stream_interval, context=context)
        try:
            if not msg.readable:
                await stream.finish(cards.text_card(cards.local_text("title", lang),
                                                    cards.local_text("unsupported", lang)))
                return
            if command.kind == "help" or (command.kind == "ref" and not command.argument):
                await stream.finish(cards.text_card(cards.local_text("title_help", lang), text("help", lang)))
            elif command.kind == "status":
                status = await asyncio.to_thread(self.bot.status)
                await stream.finish(cards.text_card(cards.local_text("title_status", lang),
                                                    format_status(status, lang)))
            elif command.kind == "ref":
                result = await self.bot.ref(command.argument, self.bot.allowed_spaces_for(msg.chat_id))
                await stream.finish(cards.ref_card(result))
            else:
                await self._ask(msg, command.argument, lang, stream)
        except Exception:
            log.exception("feishu: answering failed (%s)", context)
            await stream.finish(cards.error_card(lang))

    async def _ask(self, msg: MessageIn, question_text: str, lang: Lang, stream: CardStream) -> None:
        question = Question(text=question_text, platform="feishu", user_id=msg.user_id, chat_id=msg.chat_id,
                            thread_id=msg.thread_root, message_id=msg.message_id,
                            allowed_spaces=self.bot.allowed_spaces_for(msg.chat_id))
        # a real question shows progress at once; "only a mention" or only emoji is answered at once
        if has_words(question_text) and not await stream.open(cards.searching_card(lang)):
            return

        async def progress(partial: str) -> None:
            stream.update(cards.streaming_card(partial, lang))

        started = time.perf_counter()
        reply = await self.bot.answer(question, on_progress=progress)
        delivered = await stream.finish(cards.answer_card(reply))  # the core counts and times answers
        log.info("feishu: answered", extra={
            "event_id": msg.event_id, "message_id": msg.message_id, "chat_id": msg.chat_id,
            "user_id": msg.user_id, "question_id": reply.question_id, "mode": reply.mode,
            "covered": reply.covered, "delivered": bool(delivered),
            "seconds": round(time.perf_counter() - started, 3)})

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
            return _toast("success", cards.local_text("thanks", lang))
        try:
            known = await asyncio.wait_for(self.bot.record_feedback(qid, action.user_id, value),  # type: ignore[arg-type]
                                           timeout=self.card_timeout)
        except TimeoutError:
            known = True  # the write continues in its thread; answer before Feishu gives up
        except Exception:
            log.exception("feishu: recording feedback failed (question=%s user=%s)", qid, action.user_id)
            return _toast("error", text("error", lang))
        if not known:
            return _toast("info", cards.local_text("unknown_question", lang))
        FEEDBACK.labels("feishu", value).inc()
        return _toast("success", cards.local_text("thanks", lang))

    # ----- helpers ----------------------------------------------------------------------------
    def _claim(self, kind: str, key: str) -> bool:
        return not key or self.bot.claim(f"feishu:{kind}:{key}", SEEN_TTL_SECONDS)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _toast(kind: str, content: str) -> dict[str, Any]:
    return {"toast": {"type": kind, "content": content}}
