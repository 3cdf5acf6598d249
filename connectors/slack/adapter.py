"""`SlackAdapter`: the Slack bot as `wikibot serve` mounts it (bot.adapters.Adapter).

Socket Mode (default: no public URL) or HTTP mode (`POST /slack/events`, signed
requests) feed the same bolt app. Dispatch always happens on the adapter's home
loop — the loop that called `start()` — whichever loop served the HTTP request,
so answers in flight belong to one loop and `stop()` can wait for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters import ack_seconds
from bot.answering.wikibot import WikiBot
from bot.infra.metrics import ACK_SECONDS, EVENTS_REJECTED
from connectors.slack.app import build_bolt_app, make_client
from connectors.slack.front import socket_connected
from connectors.slack.handler import SlackHandler
from connectors.slack.settings import SlackSection
from connectors.slack.verify import Refused, check_request

log = logging.getLogger(__name__)
T = TypeVar("T")
CONNECT_WAIT_SECONDS = 10.0


class _TimedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, timing each envelope from arrival to ack."""

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        await super().handle(client, req)
        ACK_SECONDS.labels("slack").observe(time.perf_counter() - started)


class SlackAdapter:
    name = "slack"

    def __init__(self, settings: SlackSection, bot: WikiBot, *, stream_interval: float = 1.0,
                 connect: bool = True) -> None:
        s = settings
        self.settings = settings
        self.mode = s.mode
        self.connect = connect  # False: serve's front holds Socket Mode and passes envelopes to `receive`
        self.client = make_client(settings)
        self.handler = SlackHandler(bot, self.client, stream_interval=stream_interval)
        self.app = build_bolt_app(settings, self.handler)
        self.http = AsyncSlackRequestHandler(self.app)
        self.socket: _TimedSocketModeHandler | None = None
        self.bot_user_id = ""
        self.identity_error = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Task[None] | None = None

    # ----- Adapter ----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [Route("/slack/events", self._events, methods=["POST"])]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.identity()
        if self.mode == "socket" and not self.connect:
            if not self.settings.app_token.get_secret_value():
                log.error("slack: socket mode needs SLACK_APP_TOKEN (xapp-…, scope connections:write); "
                          "no events will arrive until it is set, or set SLACK_MODE=http")
        elif self.mode == "socket":
            app_token = self.settings.app_token.get_secret_value()
            if not app_token:
                log.error("slack: socket mode needs SLACK_APP_TOKEN (xapp-…, scope connections:write); "
                          "no events will arrive until it is set, or set SLACK_MODE=http")
                return
            self.socket = _TimedSocketModeHandler(self.app, app_token=app_token, web_client=self.client)
            # connect() retries until it connects: do not hold up serve's start on it
            self._connecting = asyncio.create_task(self.socket.connect_async())  # type: ignore[no-untyped-call]
            await asyncio.wait({self._connecting}, timeout=CONNECT_WAIT_SECONDS)
            if not self._connecting.done():
                log.warning("slack: socket mode not connected yet; still trying in the background")
        elif not self.settings.signing_secret.get_secret_value():
            log.error("slack: HTTP mode needs SLACK_SIGNING_SECRET; every request will be refused until it is set")

    async def stop(self) -> None:
        if self.socket is not None:
            # no new events; answers in flight continue below
            await self.socket.close_async()  # type: ignore[no-untyped-call]
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        await self.handler.drain(timeout=30.0)

    def health(self) -> dict[str, Any]:
        connected: bool | None = None
        if self.mode == "socket" and not self.connect:
            ok = bool(self.settings.app_token.get_secret_value())  # the front adds its connection's state
        elif self.mode == "socket":
            connected = socket_connected(self.socket.client if self.socket else None)
            ok = connected
        else:
            ok = bool(self.settings.signing_secret.get_secret_value())
        return {"ok": bool(ok and self.bot_user_id), "mode": self.mode, "bot_identity": bool(self.bot_user_id),
                "socket_connected": connected, "answers_in_flight": self.handler.in_flight,
                **({"error": self.identity_error} if self.identity_error else {})}

    async def identity(self) -> str:
        """The bot's user id (auth.test), fetched once; logs a bad token clearly at start-up."""
        if not self.bot_user_id:
            try:
                resp = await self.client.auth_test()
                self.bot_user_id = str(resp.get("user_id") or "")
                self.identity_error = ""
            except SlackApiError as exc:
                self.identity_error = str(exc.response.get("error"))
                log.error("slack: auth.test failed (%s): check SLACK_BOT_TOKEN", self.identity_error)
            except Exception as exc:  # noqa: BLE001 - the network, say; bolt retries auth.test on the first event
                self.identity_error = type(exc).__name__
                log.warning("slack: auth.test unreachable (%s); will retry on the first event", exc)
        return self.bot_user_id

    async def receive(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A Socket Mode envelope from serve's front (bot.adapters.Adapter.receive): dispatched to the bolt
        app as bolt's own Socket Mode handler does; returns {"payload": …} for the acknowledgement."""
        from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app

        request = SocketModeRequest.from_dict(payload)
        if request is None:
            return {}
        response = await self._on_home_loop(run_async_bolt_app(self.app, request))
        if response.status != 200:
            log.info("slack: %s envelope not acknowledged (status %s)", request.type, response.status)
            return {}
        if not response.body:
            return {}
        content_type = (response.headers.get("content-type") or [""])[0]
        if content_type.startswith("application/json"):
            return {"payload": json.loads(response.body)}
        return {"payload": {"text": response.body}}

    # ----- HTTP mode --------------------------------------------------------------------------
    async def _events(self, request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()  # read on the serving loop; starlette keeps it for the handler
        secret = self.settings.signing_secret.get_secret_value()
        if not secret:
            EVENTS_REJECTED.labels("slack", "no_signing_secret").inc()
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            check_request(secret, request.headers, body)
        except Refused as r:  # nothing of the body is logged
            EVENTS_REJECTED.labels("slack", r.reason).inc()
            peer = request.client.host if request.client else "?"
            what = "bad or stale signature" if r.reason == "signature" else "signed, but not UTF-8 JSON or a form"
            log.warning("slack: request refused (%s) from %s, %d bytes", what, peer, len(body))
            return JSONResponse({"error": "invalid request"}, status_code=r.status)
        response = await self._on_home_loop(self.http.handle(request))
        if response.status_code < 400:
            ACK_SECONDS.labels("slack").observe(ack_seconds(request.scope, started, time.perf_counter()))
        return response

    async def _on_home_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop() or loop.is_closed():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def build_adapter(settings: SlackSection, bot: WikiBot, *, connect: bool = True) -> SlackAdapter:
    return SlackAdapter(settings, bot, connect=connect)
