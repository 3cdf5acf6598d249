"""The bolt `AsyncApp`: verification, de-duplication, and listeners that ack, claim and hand over.

Both transports (HTTP and Socket Mode) dispatch into this one app. Bolt acks an
Events API delivery before any listener runs; commands and button clicks are
acked first thing in their listeners. Nothing here waits on retrieval or on the
model: that runs in `SlackHandler` tasks.

Slack redelivers an event whose ack it did not see within 3 s (header
`X-Slack-Retry-Num`), and a channel message that mentions the bot may also come
as a `message` event with another event id. So every event id is claimed in a
global middleware (a repeat is acked and dropped; a retry of an event we never
saw is handled normally), and each message is claimed by its `client_msg_id`
and channel+ts just before it is answered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from connectors.slack.settings import SlackSection
from bot.answering.language import detect_language
from bot.infra.metrics import EVENTS_DEDUPLICATED, EVENTS_REJECTED
from bot.answering.texts import text
from connectors.slack.handler import SlackHandler
from connectors.slack.inbound import (
    FEEDBACK_ACTIONS,
    Ignored,
    Inbound,
    parse_feedback,
    parse_mention,
    parse_message,
    parse_slash,
)

log = logging.getLogger(__name__)
REPLAY_WINDOW_SECONDS = 600  # bolt refuses timestamps older than 5 min; remember signatures a bit longer
RATE_LIMIT_RETRIES = 2


def make_client(settings: SlackSection) -> AsyncWebClient:
    """The Web API client: the configured base URL, and 429s waited out for `Retry-After`."""
    s = settings
    return AsyncWebClient(token=s.bot_token.get_secret_value(), base_url=s.api_url,
                          retry_handlers=[AsyncConnectionErrorRetryHandler(),
                                          AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)])


def build_bolt_app(settings: SlackSection, handler: SlackHandler) -> AsyncApp:
    app = AsyncApp(
        name="wikibot",
        client=handler.client,
        # an explicit value: bolt would otherwise read SLACK_SIGNING_SECRET from the environment itself
        signing_secret=settings.signing_secret.get_secret_value(),
        # HTTP mode's signature is checked before bolt sees a request (connectors/slack/verify.py):
        # bolt's own check would log the body of every request it refuses
        request_verification_enabled=False,
        ignoring_self_events_enabled=True,  # needs auth.test's user_id and bot_id
        process_before_response=False,  # ack first, work after
    )
    app.middleware(_drop_repeats(handler))
    _register_events(app, handler)
    _register_commands(app, settings, handler)
    _register_actions(app, handler)
    return app


Next = Callable[[], Awaitable[BoltResponse]]


def _drop_repeats(handler: SlackHandler) -> Callable[..., Awaitable[BoltResponse | None]]:
    async def drop_repeats(req: AsyncBoltRequest, body: dict[str, Any], next: Next) -> BoltResponse | None:
        if body.get("type") == "event_callback":
            event_id = str(body.get("event_id") or "")
            if event_id and not handler.claim(f"event:{event_id}"):
                EVENTS_DEDUPLICATED.labels("slack").inc()
                retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
                log.info("slack: repeated delivery of event %s dropped (retry %s, %s)", event_id, retry,
                         (req.headers.get("x-slack-retry-reason") or ["-"])[0])
                return BoltResponse(status=200, body="")
        elif req.mode == "http" and body.get("type") not in ("url_verification", "ssl_check"):
            # a slash command or click captured and sent again within bolt's 5-minute window
            signature = (req.headers.get("x-slack-signature") or [""])[0]
            if signature and not handler.bot.claim(f"slack:sig:{signature}", REPLAY_WINDOW_SECONDS):
                EVENTS_REJECTED.labels("slack", "replayed").inc()
                log.warning("slack: replayed request refused (%s)", body.get("command") or body.get("type"))
                return BoltResponse(status=401, body={"error": "invalid request", "reason": "replayed"})
        return await next()

    return drop_repeats


def _register_events(app: AsyncApp, handler: SlackHandler) -> None:
    def accept(parsed: Inbound | Ignored, kind: str) -> None:
        if isinstance(parsed, Ignored):
            log.debug("slack: %s ignored: %s", kind, parsed.reason)
            return
        if not handler.claim(*parsed.dedupe_keys()):
            EVENTS_DEDUPLICATED.labels("slack").inc()
            log.info("slack: message %s/%s already answered (%s)", parsed.channel_id, parsed.ts, kind)
            return
        handler.spawn(handler.respond_to_message(parsed))

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], context: AsyncBoltContext) -> None:
        accept(parse_mention(event, context.bot_user_id or ""), "app_mention")

    @app.event("message")  # every subtype, so none is logged as unhandled; parse_message picks DMs
    async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
        accept(parse_message(event, context.bot_user_id or ""), "message")


def _register_commands(app: AsyncApp, settings: SlackSection, handler: SlackHandler) -> None:
    Ack = Callable[..., Awaitable[None]]
    names = settings.commands

    def usage(words: str) -> str:
        return text("usage", detect_language(words), **names)

    @app.command(names["ask"])
    async def on_ask(ack: Ack, body: dict[str, Any], respond: Any) -> None:
        cmd = parse_slash(body)
        if not cmd.text:
            await ack(text=usage(cmd.text))  # shown to the asker only
            return
        await ack()
        handler.spawn(handler.ask_in_channel(cmd, respond))

    @app.command(names["ref"])
    async def on_ref(ack: Ack, body: dict[str, Any], respond: Any) -> None:
        cmd = parse_slash(body)
        if not cmd.text:
            await ack(text=usage(cmd.text))
            return
        await ack()
        handler.spawn(handler.ref_for_user(cmd, respond))


def _register_actions(app: AsyncApp, handler: SlackHandler) -> None:
    pattern = re.compile("^(" + "|".join(re.escape(a) for a in FEEDBACK_ACTIONS) + ")$")

    @app.action(pattern)
    async def on_feedback(ack: Callable[[], Awaitable[None]], body: dict[str, Any], action: dict[str, Any],
                          respond: Any) -> None:
        await ack()
        click = parse_feedback(body, action, FEEDBACK_ACTIONS)
        if isinstance(click, Ignored) or not click.question_id:
            return
        handler.spawn(handler.record_feedback(click, respond))
