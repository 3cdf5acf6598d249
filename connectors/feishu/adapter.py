"""`FeishuAdapter`: the Feishu bot as `wikibot serve` mounts it (bot.adapters.Adapter).

Events arrive over the long connection (default) or the HTTP callback; both
end in `deliver`, which runs the one handler on the adapter's home loop (the
loop that called `start`), whichever thread the event came in on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.adapters import ack_seconds
from bot.answering.wikibot import WikiBot
from bot.infra.metrics import ACK_SECONDS, EVENTS_REJECTED
from connectors.feishu.api import FeishuApi
from connectors.feishu.events import event_id
from connectors.feishu.handler import FeishuHandler
from connectors.feishu.settings import FeishuSection
from connectors.feishu.longconn import LongConnection
from connectors.feishu.webhook import Rejected, WebhookChecks

log = logging.getLogger(__name__)


class FeishuAdapter:
    name = "feishu"

    def __init__(self, settings: FeishuSection, bot: WikiBot, *, api: FeishuApi | None = None,
                 stream_interval: float = 0.5, connect: bool = True) -> None:
        f = settings
        self.settings = settings
        self.mode = f.event_mode
        self.connect = connect  # False: serve's front holds the long connection and passes events to `receive`
        self.api = api or FeishuApi(f.app_id, f.app_secret.get_secret_value(), f.domain)
        self.handler = FeishuHandler(bot, self.api, stream_interval=stream_interval)
        self.checks = WebhookChecks(f.verification_token.get_secret_value(), f.encrypt_key.get_secret_value(),
                                    claim_nonce=bot.claim)
        self.long_connection: LongConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----- Adapter ----------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [Route("/feishu/events", self._callback, methods=["POST"]),
                Route("/feishu/card", self._callback, methods=["POST"])]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.handler.identity()
        if self.mode == "ws" and self.connect:
            f = self.settings
            self.long_connection = LongConnection(f.app_id, f.app_secret.get_secret_value(), f.domain,
                                                  self.deliver_threadsafe)
            self.long_connection.start()
        elif self.mode == "ws":
            pass  # the front's long connection (connectors/feishu/front.py)
        elif not self.checks.configured:
            log.error("feishu: webhook mode needs FEISHU_VERIFICATION_TOKEN (and ideally "
                      "FEISHU_ENCRYPT_KEY); every callback will be rejected until one is set")
        elif not self.checks.encrypt_key:
            log.warning("feishu: no FEISHU_ENCRYPT_KEY: callbacks are checked by token only "
                        "(no signature, no replay protection)")

    async def stop(self) -> None:
        if self.long_connection is not None:
            await asyncio.to_thread(self.long_connection.stop)
        await self.handler.drain(timeout=30.0)
        self.api.close()

    def health(self) -> dict[str, Any]:
        connected = self.long_connection.connected if self.long_connection else None
        if self.mode == "ws":
            ok = bool(connected) if self.connect else True  # the front adds its connection's state
        else:
            ok = self.checks.configured
        return {"ok": ok and bool(self.handler.bot_open_id), "mode": self.mode,
                "bot_identity": bool(self.handler.bot_open_id), "long_connection": connected,
                "answers_in_flight": self.handler.in_flight, "rate_limit_waits": self.api.rate_limited}

    # ----- the one way in ---------------------------------------------------------------------
    async def deliver(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Hand one decoded event to the handler on the home loop; returns the acknowledgement body."""
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop() or loop.is_closed():
            return await self.handler.handle(envelope)
        future = asyncio.run_coroutine_threadsafe(self.handler.handle(envelope), loop)
        return await asyncio.wrap_future(future)

    async def receive(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An event from the long connection held by serve's front (bot.adapters.Adapter.receive)."""
        return await self.deliver(payload)

    def deliver_threadsafe(self, envelope: dict[str, Any], timeout: float = 2.8) -> dict[str, Any]:
        """`deliver` for the long-connection thread (blocking, bounded by Feishu's 3 s deadline)."""
        if self._loop is None:
            raise RuntimeError("FeishuAdapter.start() has not run")
        return asyncio.run_coroutine_threadsafe(self.handler.handle(envelope), self._loop).result(timeout)

    async def _callback(self, request: Request) -> JSONResponse:
        started = time.perf_counter()
        body = await request.body()
        try:
            envelope = self.checks.open(request.headers, body)
        except Rejected as r:
            EVENTS_REJECTED.labels("feishu", r.reason).inc()
            peer = request.client.host if request.client else "?"
            log.warning("feishu callback rejected: %s (%s) path=%s peer=%s; no answer work done",
                        r.reason, r.detail or "-", request.url.path, peer)
            return JSONResponse({"msg": r.reason}, status_code=r.status)
        if envelope.get("type") == "url_verification":
            return JSONResponse({"challenge": envelope.get("challenge", "")})
        try:
            result = await self.deliver(envelope)
        except Exception:
            log.exception("feishu: callback for event %s failed", event_id(envelope))
            return JSONResponse({"msg": "internal error"}, status_code=500)
        ACK_SECONDS.labels("feishu").observe(ack_seconds(request.scope, started, time.perf_counter()))
        return JSONResponse(result)


def build_adapter(settings: FeishuSection, bot: WikiBot, *, connect: bool = True) -> FeishuAdapter:
    return FeishuAdapter(settings, bot, connect=connect)
