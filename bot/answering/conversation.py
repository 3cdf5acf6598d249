"""One turn of a conversation, the same on every platform: the command ladder, scoping and the fallback.

An adapter parses a platform event into an `Incoming` and provides a `ReplyChannel` that knows how to
show things on its platform (open a placeholder, stream partial text, show the final outcome);
`respond` decides what to show. So help, status, `/ref`, questions and "something went wrong" are
written once, and a new platform only translates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, Union

from bot.answering.access import Scope
from bot.answering.commands import Kind, format_status, parse_command
from bot.answering.language import detect_language, has_words
from bot.answering.models import Question, RefResult, Reply
from bot.answering.texts import Lang, text
from bot.answering.wikibot import WikiBot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """A reply that is not an answer: help, status, "I cannot read this", or an error."""

    kind: Literal["help", "status", "unsupported", "error"]
    body: str
    language: Lang


Outcome = Union[Notice, RefResult, Reply]


@dataclass(frozen=True)
class Incoming:
    """A message for the bot, as every platform delivers it."""

    text: str
    platform: str
    user_id: str = ""
    chat_id: str = ""
    thread_id: str = ""  # the root of the thread the message is in, if any
    message_id: str = ""
    readable: bool = True  # False: a kind of message the bot cannot read (an image, a sticker)
    group: bool = False  # the answer is seen by others than the asker (a group chat, a channel)
    command: Kind | None = None  # a platform slash command; otherwise parsed from the text
    log_context: Mapping[str, str] = field(default_factory=dict)  # ids for log lines


class ReplyChannel(Protocol):
    """Where the reply to one message goes, on its platform."""

    @property
    def thread_id(self) -> str:
        """After `open`: the thread the platform started for the answer ('' if none)."""
        ...

    async def open(self, language: Lang) -> bool:
        """Show at once that an answer is coming. False: nothing can be posted; give up."""
        ...

    def partial(self, answer_so_far: str, language: Lang) -> None:
        """Show the answer as it streams in (coalesced by the channel)."""
        ...

    async def finish(self, outcome: Outcome) -> bool:
        """Show the final outcome; True if it was delivered."""
        ...


async def respond(bot: WikiBot, message: Incoming, channel: ReplyChannel) -> None:
    """Answer one message on its channel. Never raises: a failure shows the error notice."""
    if message.command is not None:
        kind, argument = message.command, message.text.strip()
    else:
        parsed = parse_command(message.text)
        kind, argument = parsed.kind, parsed.argument
    lang = detect_language(argument)  # "/help" says nothing about the user's language
    try:
        if not message.readable:
            await channel.finish(Notice("unsupported", text("unsupported", lang), lang))
        elif kind == "help" or (kind == "ref" and not argument):
            await channel.finish(Notice("help", text("help", lang), lang))
        elif kind == "status":
            status = await asyncio.to_thread(bot.status)
            await channel.finish(Notice("status", format_status(status, lang), lang))
        elif kind == "ref":
            scope = await _scope(bot, message)
            await channel.finish(Notice("unsupported", text("access_unknown", lang), lang)
                                 if scope.nothing and scope.limited
                                 else await bot.ref(argument, scope.spaces, readers=scope.readers))
        else:
            await _ask(bot, message, argument, lang, channel)
    except Exception:
        log.exception("%s: answering failed (%s)", message.platform, _describe(message))
        await channel.finish(Notice("error", text("error", lang), lang))


async def _ask(bot: WikiBot, message: Incoming, question_text: str, lang: Lang, channel: ReplyChannel) -> None:
    # a real question shows progress at once; "only a mention" or only emoji is answered at once
    if has_words(question_text) and not await channel.open(lang):
        return
    scope = await _scope(bot, message)
    if scope.nothing and scope.limited:  # nothing known readable: say so, rather than "not in the wiki"
        await channel.finish(Notice("unsupported", text("access_unknown", lang), lang))
        return
    question = Question(text=question_text, platform=message.platform, user_id=message.user_id,
                        chat_id=message.chat_id, thread_id=message.thread_id or channel.thread_id,
                        message_id=message.message_id or channel.thread_id,
                        allowed_spaces=scope.spaces, allowed_readers=scope.readers)

    async def on_text(answer_so_far: str) -> None:
        channel.partial(answer_so_far, lang)

    started = time.perf_counter()
    reply = await bot.answer(question, on_progress=on_text)
    delivered = await channel.finish(reply)  # the core counts and times answers
    log.info(f"{message.platform}: answered", extra={
        **message.log_context, "question_id": reply.question_id, "mode": reply.mode, "covered": reply.covered,
        "delivered": bool(delivered), "seconds": round(time.perf_counter() - started, 3)})


async def _scope(bot: WikiBot, message: Incoming) -> Scope:
    """The spaces this answer may use: the chat's, and in asker mode what its readers may read."""
    return await bot.access.scope(message.platform, message.user_id, message.chat_id, group=message.group)


def _describe(message: Incoming) -> str:
    """`event=… message=… chat=…`: the ids, short, for one log line."""
    return " ".join(f"{k.removesuffix('_id')}={v}" for k, v in message.log_context.items())
