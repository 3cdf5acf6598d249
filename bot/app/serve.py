"""`wikibot serve`: the chat adapters, the HTTP endpoints and the sync schedule in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.adapters import Adapter
from bot.app.settings import Settings
from bot.answering.wikibot import WikiBot
from bot.app.access import install_access
from bot.app.factories import open_bot, wiki_source
from bot.app.owners import start_owners
from bot.infra.metrics import ACK_SECONDS, EVENTS_REJECTED, REGISTRY, platform_of

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 20.0


@dataclass
class ServeState:
    bot: WikiBot
    adapters: list[Adapter]
    started_at: float = field(default_factory=time.time)
    sync_status: Callable[[], dict[str, Any] | None] = lambda: None
    draining: bool = False
    extra_routes: list[BaseRoute] = field(default_factory=list)  # /admin (bot/app/owners.py)
    max_request_bytes: int = 1_048_576


def build_http_app(state: ServeState) -> Starlette:
    """The HTTP face of `serve`: adapter routes plus /healthz and /metrics."""

    async def healthz(request: Request) -> JSONResponse:
        parts: dict[str, Any] = {}
        try:
            pages = await asyncio.to_thread(state.bot.index.count_pages)
            parts["index"] = {"ok": True, "pages": pages}
        except Exception as exc:  # the Qdrant server is down, say
            parts["index"] = {"ok": False, "error": type(exc).__name__}
        parts["adapters"] = {a.name: a.health() for a in state.adapters}
        sync = state.sync_status() or state.bot.status().last_sync
        parts["sync"] = sync or {"ok": True, "last": None}
        ok = (parts["index"]["ok"] and all(h.get("ok") for h in parts["adapters"].values())
              and not state.draining)
        body = {"ok": ok, "draining": state.draining, "uptime_seconds": round(time.time() - state.started_at),
                **parts}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/metrics", metrics)]
    for adapter in state.adapters:
        routes.extend(adapter.routes())
    routes.extend(state.extra_routes)
    return Starlette(routes=routes, middleware=[Middleware(_CapBodySize, limit=state.max_request_bytes),
                                                Middleware(_RefuseWhileDraining, state=state)])


class _BodyTooLarge(Exception):
    pass


class _CapBodySize:
    """413 for a request body over `limit` bytes, on every endpoint: refused by its Content-Length
    before anything is read, or as soon as a streamed (chunked) body passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, int(declared))
            return
        received, started = 0, False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, received)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        path = str(scope.get("path", ""))
        EVENTS_REJECTED.labels(platform_of(path), "too_large").inc()
        log.warning("request body too large: %s bytes or more to %s (limit %s); refused with 413",
                    size, path, self.limit)
        response = JSONResponse({"error": "request body too large"}, status_code=413)
        await response(scope, receive, send)


class _RefuseWhileDraining:
    """During shutdown, event callbacks get 503: Feishu and Slack deliver them again (to another replica)."""

    def __init__(self, app: ASGIApp, state: ServeState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.state.draining:
            response = JSONResponse({"error": "shutting down"}, status_code=503, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def run(settings: Settings, worker_socket: str | None = None) -> int:
    """`wikibot serve`: the front process (bot/app/front.py), which starts this module as its worker
    (`worker_socket`: where the front reaches it); or, with `serve_front = false`, everything in one process."""
    from connectors.registry import missing_platform_keys

    problem = missing_platform_keys(settings)
    if problem:
        log.error(problem)
        print(f"error: {problem}")
        return 2
    if worker_socket is None and settings.wikibot.serve_front and sys.platform != "win32":  # Unix sockets
        from bot.app import front

        return front.run(settings)
    if worker_socket is not None:
        from bot.app.front import die_with_front

        die_with_front()
    return asyncio.run(_serve(settings, worker_socket))


async def _serve(settings: Settings, worker_socket: str | None = None) -> int:
    import uvicorn

    from bot.app.channel import ChannelServer
    from connectors.registry import build_adapters

    bot = open_bot(settings)
    try:
        await asyncio.to_thread(bot.warm_up)  # so the first question does not pay for lazy loading
    except Exception as exc:  # noqa: BLE001 - an empty or unreachable index: /healthz will say so
        log.warning("warm-up search failed: %s", exc)
    access = install_access(settings, bot)  # [access] mode = "asker": who may read what, from Feishu
    if access is not None:
        access.start_warm_up()
    adapters = build_adapters(settings, bot, connect=worker_socket is None)  # else the front holds them
    state = ServeState(bot, adapters, max_request_bytes=settings.wikibot.max_request_bytes)
    scheduler = _start_scheduler(settings, bot, state)
    owners = start_owners(settings, bot)  # the owners' page and the digest schedule
    state.extra_routes = owners.routes
    app = build_http_app(state)
    # log_config=None: uvicorn's loggers keep no handler of their own and propagate to ours (JSON, scrubbed)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.wikibot.http_host, port=settings.wikibot.http_port,
                                           log_level="warning", log_config=None, access_log=False,
                                           lifespan="off"))
    # SIGTERM is ours: uvicorn would otherwise stop serving at once, before answers in flight are done
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # uvicorn < 0.29
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    channel: ChannelServer | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    for adapter in adapters:
        await adapter.start()
    if worker_socket is None:
        serving = asyncio.create_task(server.serve())
        log.info("wikibot serving on %s:%s with %s", settings.wikibot.http_host, settings.wikibot.http_port,
                 ", ".join(a.name for a in adapters))
    else:  # behind the front (bot/app/front.py): it listens on the port once this socket answers
        channel = ChannelServer(app, on_event=_events_for(adapters),
                                on_rejected=lambda platform, reason: EVENTS_REJECTED.labels(platform, reason).inc())
        await channel.start(worker_socket)
        serving = asyncio.create_task(stop.wait())
        log.info("wikibot worker ready with %s (the front serves %s:%s)", ", ".join(a.name for a in adapters),
                 settings.wikibot.http_host, settings.wikibot.http_port)
    await _first(stop.wait(), serving)
    state.draining = True  # webhooks now get 503, so the platform redelivers them to another replica
    log.info("shutting down: no new events, finishing answers in flight (up to %ss)", SHUTDOWN_GRACE_SECONDS)
    if scheduler is not None:
        scheduler.shutdown()  # a running sync stops at its next page boundary
    owners.shutdown()
    await _bounded(asyncio.gather(*(a.stop() for a in adapters), return_exceptions=True))
    if scheduler is not None:
        await _bounded(scheduler.wait_idle())  # never close the index under a sync
    server.should_exit = True
    await _bounded(serving)
    if channel is not None:
        await channel.close()
    if access is not None:
        access.close()
    await bot.aclose()
    log.info("stopped")
    return 0


def _events_for(adapters: list[Adapter]) -> Callable[[str, dict[str, Any], float | None], Awaitable[dict[str, Any]]]:
    """Events from the connections serve's front holds, to the adapter of their platform."""
    by_name = {a.name: a for a in adapters}

    async def on_event(platform: str, payload: dict[str, Any], acked_seconds: float | None) -> dict[str, Any]:
        if acked_seconds is not None:  # the front acknowledged it: that is the acknowledgement time
            ACK_SECONDS.labels(platform).observe(acked_seconds)
        adapter = by_name.get(platform)
        return await adapter.receive(payload) if adapter is not None else {}

    return on_event


def _start_scheduler(settings: Settings, bot: WikiBot, state: ServeState) -> Any:
    """The wiki sync schedule, when a Feishu wiki is configured and the schedule is on."""
    if not settings.feishu.enabled or (settings.wikibot.sync_interval_minutes == 0 and not settings.wikibot.sync_cron):
        return None
    from bot.syncing.scheduler import start_for_serve

    scheduler = start_for_serve(settings, bot, wiki_source(settings))
    scheduler.after_sync = bot.access.invalidate  # spaces and their readers may have changed
    state.sync_status = scheduler.status
    return scheduler


async def _first(*aws: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)


async def _bounded(aw: Awaitable[Any]) -> None:
    try:
        await asyncio.wait_for(aw, SHUTDOWN_GRACE_SECONDS)
    except asyncio.TimeoutError:
        log.warning("shutdown step did not finish within %ss", SHUTDOWN_GRACE_SECONDS)
    except Exception:
        log.exception("error during shutdown")
