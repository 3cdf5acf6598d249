"""What the bot does with a Slack question, `/ref` lookup or feedback click, after Slack was acked.

The listeners in `app.py` only acknowledge, claim and hand over; everything slow
(retrieval, generation, Web API calls) runs here in tracked tasks, so `stop()`
can wait for answers in flight and tests can wait for them to land.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.answering import conversation
from bot.answering.commands import Kind
from bot.answering.conversation import Incoming
from bot.answering.language import detect_language
from bot.answering.texts import Lang, text
from bot.answering.wikibot import WikiBot
from bot.infra.metrics import FEEDBACK
from connectors.slack import render
from connectors.slack.inbound import FeedbackClick, Inbound, SlashCommand
from connectors.slack.replier import MessageStream, Respond, SlackChannel

log = logging.getLogger(__name__)
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

    # ----- mentions, DMs and slash commands ------------------------------------------------------
    async def respond_to_message(self, msg: Inbound) -> None:
        """A mention or DM: the answer streams into a reply in the message's thread."""
        incoming = Incoming(text=msg.text, platform="slack", user_id=msg.user_id, chat_id=msg.channel_id,
                            thread_id=msg.thread_root, message_id=msg.ts, group=not msg.is_dm,
                            log_context={"channel_id": msg.channel_id, "message_ts": msg.ts,
                                         "thread_ts": msg.thread_root, "user_id": msg.user_id})
        stream = MessageStream(self.client, msg.channel_id, msg.thread_root, min_interval=self.stream_interval,
                               context=f"channel={msg.channel_id} ts={msg.ts} user={msg.user_id}")
        await conversation.respond(self.bot, incoming, SlackChannel(stream))

    async def ask_in_channel(self, cmd: SlashCommand, respond: Respond) -> None:
        """`/ask question`: the answer is posted in the channel, under who asked what (or through the
        command's response_url where the bot cannot post: not in the channel, a DM between people)."""
        header = render.asked_header(cmd.user_id, cmd.text, detect_language(cmd.text))
        stream = MessageStream(self.client, cmd.channel_id, None, min_interval=self.stream_interval,
                               context=f"channel={cmd.channel_id} user={cmd.user_id} command={cmd.command}")
        # posted for everyone in the conversation to see (in a DM between people too): a group answer
        await conversation.respond(self.bot, self._incoming(cmd, "ask", group=True),
                                   SlackChannel(stream, header=header, respond=respond))

    async def ref_for_user(self, cmd: SlashCommand, respond: Respond) -> None:
        """`/ref words`: matching pages, shown only to the person who asked."""
        await conversation.respond(self.bot, self._incoming(cmd, "ref"),
                                   SlackChannel(None, respond=respond, response_type="ephemeral"))

    @staticmethod
    def _incoming(cmd: SlashCommand, kind: Kind, group: bool = False) -> Incoming:
        return Incoming(text=cmd.text, platform="slack", user_id=cmd.user_id, chat_id=cmd.channel_id, command=kind,
                        group=group,
                        log_context={"channel_id": cmd.channel_id, "command": cmd.command, "user_id": cmd.user_id})

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
        note = text("thanks" if known else "unknown_question", lang)
        try:
            if respond is not None:
                await respond(text=note, response_type="ephemeral", replace_original=False)
            elif click.channel_id:
                await self.client.chat_postEphemeral(channel=click.channel_id, user=click.user_id, text=note)
        except Exception as exc:  # noqa: BLE001 - the thanks is a courtesy; the vote is stored
            log.info("slack: could not thank %s for feedback: %s", click.user_id, exc)
