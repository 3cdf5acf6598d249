"""Slack in `serve`'s front process: what can be acknowledged before the worker sees it.

An Events API delivery, one of our slash commands with words after it, or a click on a feedback button
is acknowledged at once with what bolt would send (an empty acknowledgement) and handed to the adapter,
which checks, claims and handles it as if it had come straight to it. Anything else — the URL check, a
command without words (its usage text is the acknowledgement), anything unsigned or malformed — goes
through to the adapter, which answers it itself.

- HTTP mode (`front_doors`, a bot.adapters.QuickAckDoor): only a correctly signed request qualifies.
- Socket Mode (`front_connections`): the front holds the connection (slack_sdk's aiohttp client, imported
  when it starts); the adapter gets the envelope through `SlackAdapter.receive`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from bot.adapters import AskWorker, FrontConnection, HandOver, QuickAck, QuickAckDoor
from connectors.slack.inbound import FEEDBACK_ACTIONS
from connectors.slack.settings import SlackSection
from connectors.slack.verify import signature_ok


log = logging.getLogger(__name__)
CONNECT_WAIT_SECONDS = 10.0


def front_doors(settings: SlackSection) -> dict[str, QuickAckDoor]:
    secret = settings.signing_secret.get_secret_value()
    if settings.mode != "http" or not secret:
        return {}
    commands = set(settings.commands.values())

    def events(headers: Mapping[str, str], body: bytes) -> QuickAck | None:
        if not signature_ok(secret, headers, body, time.time()):
            return None
        parsed = _parse(headers.get("content-type") or "", body)
        if parsed is None or not _acknowledged_empty(parsed, commands):
            return None
        return QuickAck(200)

    return {"/slack/events": events}


def _acknowledged_empty(body: dict[str, Any], commands: set[str]) -> bool:
    """Requests whose acknowledgement is an empty 200 and whose work happens after it."""
    if body.get("type") == "event_callback":
        return True
    if "command" in body:
        return body.get("command") in commands and bool(str(body.get("text") or "").strip())
    if body.get("type") == "block_actions":
        actions = body.get("actions") or []
        return bool(actions) and all(isinstance(a, dict) and a.get("action_id") in FEEDBACK_ACTIONS
                                     for a in actions)
    return False


def _parse(content_type: str, body: bytes) -> dict[str, Any] | None:
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/json"):
            value = json.loads(text)
        else:
            form = {k: v[0] for k, v in parse_qs(text).items()}
            value = json.loads(form["payload"]) if "payload" in form else form
    except (ValueError, KeyError):
        return None
    return value if isinstance(value, dict) else None


def front_connections(settings: SlackSection) -> list[FrontConnection]:
    if settings.mode != "socket" or not settings.app_token.get_secret_value():
        return []  # the adapter logs what is missing
    return [SocketModeFront(settings)]


class SocketModeFront:
    """Slack's Socket Mode connection, held by the front."""

    name = "slack"

    def __init__(self, settings: SlackSection) -> None:
        self.settings = settings
        self.commands = set(settings.commands.values())
        self.client: Any = None
        self._connecting: asyncio.Task[None] | None = None

    async def start(self, hand_over: HandOver, ask: AskWorker) -> None:
        from slack_sdk.socket_mode.aiohttp import SocketModeClient
        from slack_sdk.socket_mode.request import SocketModeRequest
        from slack_sdk.socket_mode.response import SocketModeResponse
        from slack_sdk.web.async_client import AsyncWebClient

        s = self.settings
        web = AsyncWebClient(token=s.bot_token.get_secret_value(), base_url=s.api_url)
        self.client = SocketModeClient(app_token=s.app_token.get_secret_value(), web_client=web)

        async def on_request(client: Any, req: SocketModeRequest) -> None:
            started = time.perf_counter()
            envelope = {"type": req.type, "envelope_id": req.envelope_id, "payload": req.payload,
                        "accepts_response_payload": req.accepts_response_payload,
                        "retry_attempt": req.retry_attempt, "retry_reason": req.retry_reason}
            if isinstance(req.payload, dict) and _acknowledged_empty(req.payload, self.commands):
                await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
                hand_over(envelope, time.perf_counter() - started)
                return
            try:
                answer = await ask(envelope)
            except Exception as exc:  # noqa: BLE001 - the worker is busy or gone: Slack sends it again
                log.warning("slack: no acknowledgement from the worker for a %s envelope (%s)", req.type,
                            type(exc).__name__)
                return
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id,
                                                                      payload=answer.get("payload")))

        self.client.socket_mode_request_listeners.append(on_request)
        # connect() retries until it connects: do not hold up the start on it
        self._connecting = asyncio.create_task(self.client.connect())
        await asyncio.wait({self._connecting}, timeout=CONNECT_WAIT_SECONDS)
        if not self._connecting.done():
            log.warning("slack: socket mode not connected yet; still trying in the background")

    async def stop(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self.client is not None:
            await self.client.close()

    def health(self) -> dict[str, Any]:
        connected = socket_connected(self.client)
        return {"ok": connected, "socket_connected": connected}


def socket_connected(client: Any) -> bool:
    """Whether a Socket Mode client (slack_sdk's aiohttp one) has a live, fresh session."""
    session = client.current_session if client else None
    return bool(session is not None and not session.closed and client and not client.stale)
