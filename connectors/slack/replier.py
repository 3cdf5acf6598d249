"""One reply per question: a placeholder posted at once, then the answer streamed into it.

`chat.update` is rate limited (Tier 3, ~50 a minute per workspace, shared by
every answer in progress), so updates are coalesced: at most one every
`min_interval` seconds, always the newest text, and the final answer is always
sent. A 429 is waited out: the client's `AsyncRateLimitErrorRetryHandler` sleeps
for `Retry-After` and retries; if Slack still says 429, the final update waits
once more here rather than leaving a half-streamed answer on screen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answering.conversation import Notice, Outcome
from bot.answering.streaming import CoalescedUpdates, Pending
from bot.answering.texts import Lang
from connectors.slack import render
from connectors.slack.render import Message

log = logging.getLogger(__name__)
FINAL_ATTEMPTS = 3
MAX_RETRY_AFTER = 60.0
Respond = Callable[..., Awaitable[Any]]  # bolt's `respond` (the command's response_url)
RESPONSE_URL_MESSAGES = 5  # a response_url takes at most 5 messages


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asked us to wait, if this error is a rate limit."""
    resp = exc.response
    if getattr(resp, "status_code", None) != 429 and resp.get("error") != "ratelimited":
        return None
    headers: dict[str, Any] = getattr(resp, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return min(float(value), MAX_RETRY_AFTER)
            except ValueError:
                break
    return 1.0


class MessageStream:
    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None, *,
                 min_interval: float = 1.0, context: str = "") -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts  # None: a new top-level message (an /ask answer)
        self.context = context  # for log lines
        self.ts = ""
        self._updates: CoalescedUpdates[Message] = CoalescedUpdates(self._update, min_interval=min_interval,
                                                                    name=f"slack-stream-{channel}")

    @property
    def updates_sent(self) -> int:
        return self._updates.sent

    async def open(self, message: Message) -> bool:
        """Post the placeholder. False (and logged) if Slack refused it."""
        try:
            resp = await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                      unfurl_links=False, unfurl_media=False, **message.kwargs())
        except SlackApiError as exc:
            log.warning("slack: could not post in %s (%s): %s", self.channel, self.context,
                        exc.response.get("error"))
            return False
        except Exception as exc:  # noqa: BLE001 - Slack unreachable: the caller gives up on this answer
            log.warning("slack: could not post in %s (%s): %r", self.channel, self.context, exc)
            return False
        self.ts = str(resp["ts"])
        self._updates.mark_sent()
        return True

    def update(self, message: Pending[Message]) -> None:
        """Show this soon; a newer message given before it is sent replaces it.

        Pass a callable to defer rendering: progress arrives per token, updates once a second.
        """
        if self.ts:
            self._updates.update(message)

    async def finish(self, messages: list[Message]) -> bool:
        """The final answer: the placeholder updated with the first message, the rest posted after it."""
        first, rest = messages[0], messages[1:]
        delivered = await self._updates.finish(first) if self.ts else await self.open(first)
        for extra in rest if self.ts else ():
            delivered = await self._post_extra(extra) and delivered
        return delivered

    # ----- internals --------------------------------------------------------------------------
    async def _update(self, message: Message, final: bool) -> bool:
        attempts = FINAL_ATTEMPTS if final else 1
        for attempt in range(attempts):
            try:
                await self.client.chat_update(channel=self.channel, ts=self.ts, **message.kwargs())
                return True
            except SlackApiError as exc:
                wait = retry_after(exc)
                if wait is None or attempt == attempts - 1:
                    self._log_failure(exc.response.get("error"), final, exc.response.get("errors"))
                    return False
                log.info("slack: chat.update rate limited; retrying in %.1fs (%s)", wait, self.context)
                await asyncio.sleep(wait)
            except Exception as exc:  # noqa: BLE001 - Slack unreachable (after the client's own retry)
                self._log_failure(repr(exc), final)
                return False
        return False

    async def _post_extra(self, message: Message) -> bool:
        try:
            await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts or self.ts,
                                               unfurl_links=False, unfurl_media=False, **message.kwargs())
            return True
        except SlackApiError as exc:
            self._log_failure(exc.response.get("error"), True, exc.response.get("errors"))
            return False
        except Exception as exc:  # noqa: BLE001 - Slack unreachable
            self._log_failure(repr(exc), True)
            return False

    def _log_failure(self, error: object, final: bool, details: object = None) -> None:
        if final:
            log.warning("slack: final answer not delivered to %s/%s (%s): %s %s", self.channel, self.ts,
                        self.context, error, details or "")
        else:
            log.debug("slack: intermediate update failed: %s", error)


class SlackChannel:
    """The conversation's reply channel on Slack: a message streamed by `MessageStream` and rendered by
    `render`; or, for a slash command, the command's response_url (where the bot cannot post itself)."""

    def __init__(self, stream: MessageStream | None, *, header: str = "", respond: Respond | None = None,
                 response_type: str = "in_channel") -> None:
        self.stream = stream
        self.header = header  # an /ask answer shows who asked what
        self.respond = respond
        self.response_type = response_type
        self._via_url = stream is None

    @property
    def thread_id(self) -> str:
        """An answer posted at the top level (an /ask) is the root of its own thread."""
        if self.stream is not None and self.stream.ts and self.stream.thread_ts is None:
            return self.stream.ts
        return ""

    async def open(self, language: Lang) -> bool:
        if self.stream is not None and await self.stream.open(render.placeholder(language, self.header)):
            return True
        self._via_url = self.respond is not None
        return self._via_url

    def partial(self, answer_so_far: str, language: Lang) -> None:
        if self.stream is not None and not self._via_url:
            self.stream.update(lambda: render.streaming(answer_so_far, language, self.header))

    async def finish(self, outcome: Outcome) -> bool:
        messages = render.outcome(outcome, self.header)
        if not self._via_url and self.stream is not None:
            return await self.stream.finish(messages)
        error = isinstance(outcome, Notice) and outcome.kind == "error"
        return await post_via_response_url(self.respond, messages, "ephemeral" if error else self.response_type)


async def post_via_response_url(respond: Respond | None, messages: list[Message], response_type: str) -> bool:
    if respond is None:
        return False
    for m in messages[:RESPONSE_URL_MESSAGES]:
        try:
            await respond(response_type=response_type, replace_original=False, **m.kwargs())
        except Exception as exc:  # noqa: BLE001 - the URL expired or was used 5 times
            log.warning("slack: response_url post failed: %s", exc)
            return False
    return True
