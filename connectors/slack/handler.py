"""What the bot does with a Slack question, `/ref` lookup or feedback click, after Slack was acked.

The listeners in `app.py` only acknowledge, claim and hand over; everything slow
(retrieval, generation, Web API calls) runs here in tracked tasks, so `stop()`
can wait for answers in flight and tests can wait for them to land.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.answering.commands import format_status, parse_command
from bot.answering.wikibot import WikiBot
from bot.answering.language import detect_language, has_words
from bot.infra.metrics import FEEDBACK
from bot.answering.models import Question
from bot.answering.texts import Lang, text
from connectors.slack import render as blocks
from connectors.slack.render import Message
from connectors.slack.inbound import FeedbackClick, Inbound, SlashCommand
from connectors.slack.replier import MessageStream

log = logging.getLogger(__name__)
Respond = Callable[..., Awaitable[Any]]  # bolt's `respond` (the response_url)
SEEN_TTL_SECONDS = 24 * 3600  # Slack retries for minutes; a day is plenty


class SlackHandler:
    def __init__(self, bot: WikiBot, client: AsyncWebClient, *, stream_interval: float = 1.0) -> None:
        self.bot = bot
        self.client = client
        self.stream_interval = stream_interval
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def claim(self, *keys: str) -> bool:
        """True if none of the keys was seen before; all of them are claimed either way."""
        fresh = [self.bot.claim(f"slack:{k}", SEEN_TTL_SECONDS) for k in keys if k]
        return all(fresh)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (bounded) for work in progress, including work started by that work."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=left)

    # ----- mentions and DMs -------------------------------------------------------------------
    async def respond_to_message(self, msg: Inbound) -> None:
        command = parse_command(msg.text)
        lang = detect_language(command.argument)
        where = f"channel={msg.channel_id} ts={msg.ts} user={msg.user_id}"
        stream = MessageStream(self.client, msg.channel_id, msg.thread_root, min_interval=self.stream_interval,
                               context=where)
        try:
            if command.kind == "help" or (command.kind == "ref" and not command.argument):
                await stream.finish(blocks.text_message(text("help", lang), lang))
            elif command.kind == "status":
                status = await asyncio.to_thread(self.bot.status)
                await stream.finish(blocks.text_message(format_status(status, lang), lang))
            elif command.kind == "ref":
                result = await self.bot.ref(command.argument, self.bot.allowed_spaces_for(msg.channel_id))
                await stream.finish(blocks.ref_messages(result))
            else:
                question = Question(text=command.argument, platform="slack", user_id=msg.user_id,
                                    chat_id=msg.channel_id, thread_id=msg.thread_root, message_id=msg.ts,
                                    allowed_spaces=self.bot.allowed_spaces_for(msg.channel_id))
                await self._answer(question, stream, lang)
        except Exception:
            log.exception("slack: answering failed (%s)", where)
            await stream.finish(blocks.text_message(text("error", lang), lang))

    async def _answer(self, question: Question, stream: MessageStream, lang: Lang, header: str = "") -> None:
        """Placeholder at once (for a real question), the answer streamed into it, the final reply."""
        if not stream.ts and has_words(question.text) and not await stream.open(blocks.placeholder(lang, header)):
            return
        if stream.ts and stream.thread_ts is None:  # an /ask answer: its own message is the thread root
            question = _with_thread(question, stream.ts)

        async def progress(partial: str) -> None:
            stream.update(lambda: blocks.streaming(partial, lang, header))

        started = time.perf_counter()
        reply = await self.bot.answer(question, on_progress=progress)
        delivered = await stream.finish(blocks.answer_messages(reply, header))
        log.info("slack: answered", extra={
            "channel_id": question.chat_id, "message_ts": question.message_id, "thread_ts": question.thread_id,
            "user_id": question.user_id, "question_id": reply.question_id, "mode": reply.mode,
            "covered": reply.covered, "delivered": delivered, "seconds": round(time.perf_counter() - started, 3)})

    # ----- slash commands ---------------------------------------------------------------------
    async def ask_in_channel(self, cmd: SlashCommand, respond: Respond) -> None:
        """`/ask question`: the answer is posted in the channel, under who asked what."""
        lang = detect_language(cmd.text)
        header = blocks.asked_header(cmd.user_id, cmd.text, lang)
        where = f"channel={cmd.channel_id} user={cmd.user_id} command={cmd.command}"
        question = Question(text=cmd.text, platform="slack", user_id=cmd.user_id, chat_id=cmd.channel_id,
                            allowed_spaces=self.bot.allowed_spaces_for(cmd.channel_id))
        stream = MessageStream(self.client, cmd.channel_id, None, min_interval=self.stream_interval, context=where)
        try:
            if await stream.open(blocks.placeholder(lang, header)):
                await self._answer(question, stream, lang, header)
                return
            # not in the channel (or a DM between people): answer through the command's response_url
            reply = await self.bot.answer(question)
            await self._respond_all(respond, blocks.answer_messages(reply, header), "in_channel")
        except Exception:
            log.exception("slack: /ask failed (%s)", where)
            if stream.ts:  # do not leave the placeholder searching forever
                await stream.finish(blocks.text_message(text("error", lang), lang))
            else:
                await self._respond_all(respond, blocks.text_message(text("error", lang), lang), "ephemeral")

    async def ref_for_user(self, cmd: SlashCommand, respond: Respond) -> None:
        """`/ref words`: matching pages, shown only to the person who asked."""
        lang = detect_language(cmd.text)
        try:
            result = await self.bot.ref(cmd.text, self.bot.allowed_spaces_for(cmd.channel_id))
            messages = blocks.ref_messages(result)
        except Exception:
            log.exception("slack: /ref failed (channel=%s user=%s)", cmd.channel_id, cmd.user_id)
            messages = blocks.text_message(text("error", lang), lang)
        await self._respond_all(respond, messages, "ephemeral")

    async def _respond_all(self, respond: Respond, messages: list[Message], response_type: str) -> None:
        for m in messages[:5]:  # a response_url takes at most 5 messages
            try:
                await respond(response_type=response_type, replace_original=False, **m.kwargs())
            except Exception as exc:  # noqa: BLE001 - the URL expired or was used 5 times
                log.warning("slack: response_url post failed: %s", exc)
                return

    # ----- feedback buttons -------------------------------------------------------------------
    async def record_feedback(self, click: FeedbackClick, respond: Respond | None) -> None:
        lang: Lang = "zh" if click.lang == "zh" else "en"
        try:
            known = await self.bot.record_feedback(click.question_id, click.user_id, click.value)  # type: ignore[arg-type]
        except Exception:
            log.exception("slack: recording feedback failed (question=%s user=%s)", click.question_id,
                          click.user_id)
            return
        if known:
            FEEDBACK.labels("slack", click.value).inc()
        note = blocks.local_text("thanks" if known else "unknown_question", lang)
        try:
            if respond is not None:
                await respond(text=note, response_type="ephemeral", replace_original=False)
            elif click.channel_id:
                await self.client.chat_postEphemeral(channel=click.channel_id, user=click.user_id, text=note)
        except Exception as exc:  # noqa: BLE001 - the thanks is a courtesy; the vote is stored
            log.info("slack: could not thank %s for feedback: %s", click.user_id, exc)


def _with_thread(question: Question, thread_ts: str) -> Question:
    from dataclasses import replace

    return replace(question, thread_id=thread_ts, message_id=question.message_id or thread_ts)
