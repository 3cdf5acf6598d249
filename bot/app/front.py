"""`serve`'s front process: the public HTTP port, acknowledgements, and nothing CPU-bound.

Feishu and Slack redeliver an event they do not see acknowledged within 3 s. In one process, the
acknowledgement waits its turn for the interpreter lock behind embedding, search, the coverage decision
and a running sync, and under a burst it came close to those 3 s. So `wikibot serve` is two processes:

- this front owns the port. A request a platform's front door recognises as an event to answer
  (correctly signed, see `bot.adapters.QuickAckDoor`) is acknowledged at once and handed to the worker;
  every other request (challenges, card callbacks, refusals, /healthz, /metrics, /admin) is passed to
  the worker and its response returned. Bodies over `max_request_bytes` get 413 here.
- the worker (`bot.app.serve` with `--worker-socket`) is the bot: index, models, adapters, the sync
  schedule. It receives the requests over a Unix socket (bot/app/channel.py) and handles them exactly as
  if they had come over HTTP: it checks them again and claims nonces and event ids, so a repeat is
  still answered once.

The front starts the worker and listens only once the worker is ready; it exits with the worker's exit
code. SIGTERM: new POSTs get 503 (the platform redelivers them to another replica), the worker gets
SIGTERM and finishes what is in flight. If the front dies, the kernel kills the worker with it.

This module imports nothing heavy (no index, no models, no platform SDK): the front stays small and its
event loop free.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.adapters import FrontConnection, QuickAckDoor
from bot.app.channel import ChannelClient, ChannelClosed, Response, http_response, request_frame
from bot.app.settings import Settings
from bot.infra.metrics import platform_of

log = logging.getLogger(__name__)

PROXY_TIMEOUT_SECONDS = 120.0  # /admin's gap report is the slowest thing the worker answers
ASK_EVENT_SECONDS = 2.5  # a connection's event whose acknowledgement the worker gives: inside the platforms' 3 s
WORKER_EXIT_SECONDS = 120.0  # the worker's own shutdown is bounded well inside this
START_POLL_SECONDS = 0.1


class FrontApp:
    """The ASGI app of the front: quick acknowledgements, everything else through the channel."""

    def __init__(self, doors: dict[str, QuickAckDoor], channel: ChannelClient, max_request_bytes: int,
                 connections: list[FrontConnection] | None = None) -> None:
        self.doors = doors
        self.channel = channel
        self.limit = max_request_bytes
        self.connections = connections or []
        self.draining = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        post = scope["method"] == "POST"
        if post and self.draining:
            await _respond(send, 503, b'{"error":"shutting down"}', extra=[(b"retry-after", b"1")])
            return
        door = self.doors.get(scope["path"]) if post else None
        if door is not None and not self.channel.closed:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                ack = door(headers, body)
            except Exception:  # noqa: BLE001 - a bug in a door: the worker's adapter still judges the request
                log.exception("front door for %s failed; passing the request on", scope["path"])
                ack = None
            if ack is not None:
                frame = request_frame(scope, body)
                frame["acked_seconds"] = time.perf_counter() - started
                try:
                    self.channel.hand_over(frame)  # before the ack: never acknowledge what the worker cannot get
                except ChannelClosed:
                    await _respond(send, 503, b'{"error":"worker unavailable"}', extra=[(b"retry-after", b"1")])
                    return
                await _respond(send, ack.status, ack.body, content_type=ack.content_type.encode())
                return
        await self._pass_on(scope, body, send)

    async def _pass_on(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        try:
            response = http_response(await self.channel.ask(request_frame(scope, body), PROXY_TIMEOUT_SECONDS))
            if scope["path"] == "/healthz" and self.connections:
                response = self._with_connections(response)
        except ChannelClosed:
            response = Response(503, [(b"content-type", b"application/json"), (b"retry-after", b"1")],
                                b'{"error":"worker unavailable"}')
        except TimeoutError:
            log.warning("%s %s: the worker gave no response within %.0fs", scope["method"], scope["path"],
                        PROXY_TIMEOUT_SECONDS)
            response = Response(504, [(b"content-type", b"application/json")], b'{"error":"timeout"}')
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k, v) for k, v in response.headers if k.lower() != b"content-length"]
                    + [(b"content-length", str(len(response.body)).encode())]})
        await send({"type": "http.response.body", "body": response.body})

    def _with_connections(self, response: Response) -> Response:
        """The worker's /healthz with the state of the connections the front holds merged in."""
        try:
            health = json.loads(response.body)
            adapters = health["adapters"]
        except (ValueError, KeyError, TypeError):
            return response
        for connection in self.connections:
            state = dict(connection.health())
            entry = adapters.setdefault(connection.name, {})
            entry["ok"] = bool(entry.get("ok", True)) and bool(state.pop("ok", False))
            entry.update(state)
        health["ok"] = bool(health.get("ok")) and all(a.get("ok") for a in adapters.values())
        return Response(200 if health["ok"] and response.status == 200 else 503,
                        [(b"content-type", b"application/json")], json.dumps(health, ensure_ascii=False).encode())

    async def _read_body(self, scope: dict[str, Any], receive: Any, send: Any) -> bytes | None:
        """The whole body, or None once a body over the limit has been refused (413, unread)."""
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send, int(declared))
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send, size)
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _refuse(self, scope: dict[str, Any], send: Any, size: int) -> None:
        path = str(scope.get("path", ""))
        platform = platform_of(path)
        log.warning("request body too large: %s bytes or more to %s (limit %s); refused with 413",
                    size, path, self.limit)
        with contextlib.suppress(ChannelClosed):
            self.channel.tell({"kind": "rejected", "platform": platform, "reason": "too_large"})
        await _respond(send, 413, b'{"error":"request body too large"}')


async def _respond(send: Any, status: int, body: bytes, content_type: bytes = b"application/json",
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ----- the process ------------------------------------------------------------------------------
def run(settings: Settings) -> int:
    return asyncio.run(_front(settings))


async def _front(settings: Settings) -> int:
    import uvicorn

    from connectors.registry import front_connections, front_doors

    doors = front_doors(settings)
    connections = front_connections(settings)
    host, port = settings.wikibot.http_host, settings.wikibot.http_port
    try:  # the port first: a clash is said at once, before the worker loads anything
        listener = _bind(host, port)
    except OSError as exc:
        log.error("serve: cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc} (set WIKIBOT_HTTP_PORT)")
        return 1
    folder = Path(tempfile.mkdtemp(prefix="wikibot-serve-"))  # mode 0700: only this user reaches the socket
    socket_path = str(folder / "worker.sock")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "serve", "--worker-socket", socket_path,
        env={**os.environ, "WIKIBOT_FRONT_PID": str(os.getpid())})
    log.info("serve: worker process %s starting", worker.pid)
    try:
        channel = await _connect(socket_path, worker, stop)
        if channel is None:  # the worker exited, or we were told to stop while it started
            return await _stop_worker(worker)
        app = FrontApp(doors, channel, settings.wikibot.max_request_bytes, connections)
        for connection in connections:
            await connection.start(_hand_over_to(channel, connection.name), _ask_of(channel, connection.name))
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,  # type: ignore[arg-type]
                                               log_level="warning", log_config=None, access_log=False,
                                               lifespan="off"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours, above
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        serving = asyncio.create_task(server.serve(sockets=[listener]))  # it listens from now on
        log.info("wikibot front on %s:%s, quick acknowledgements for %s", host, port,
                 ", ".join([*sorted(doors), *(f"{c.name}'s connection" for c in connections)]) or "nothing")
        exited = asyncio.create_task(worker.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        app.draining = True  # POSTs now get 503; GETs still reach the worker while it drains
        worker_gone, port_lost = exited.done(), serving.done() and not exited.done() and not stopping.done()
        for connection in connections:  # no new events: the platform delivers them to another replica
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.stop(), 15)
        if worker_gone:
            log.error("serve: the worker process exited (code %s); stopping", worker.returncode)
        elif port_lost:
            log.error("serve: the HTTP server stopped")
        code = await _stop_worker(worker)
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(serving, 10)
        stopping.cancel()
        await channel.aclose()
        if (worker_gone or port_lost) and code == 0:
            code = 1  # not asked to stop: never a clean exit for an operator's supervisor
        return code
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def _bind(host: str, port: int) -> socket.socket:
    """The port, bound but not yet listening (uvicorn listens once the worker is ready)."""
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _hand_over_to(channel: ChannelClient, platform: str) -> Any:
    def hand_over(payload: dict[str, Any], acked_seconds: float) -> None:
        channel.hand_over({"kind": "event", "platform": platform, "payload": payload, "acked_seconds": acked_seconds})

    return hand_over


def _ask_of(channel: ChannelClient, platform: str) -> Any:
    async def ask(payload: dict[str, Any]) -> dict[str, Any]:
        frame = await channel.ask({"kind": "event", "platform": platform, "payload": payload}, ASK_EVENT_SECONDS)
        return dict(frame.get("payload") or {})

    return ask


async def _connect(path: str, worker: asyncio.subprocess.Process, stop: asyncio.Event) -> ChannelClient | None:
    """The channel, once the worker listens (it does when it is ready to serve); None if it exited first."""
    while worker.returncode is None and not stop.is_set():
        if os.path.exists(path):
            try:
                return await ChannelClient.connect(path)
            except OSError:
                pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(worker.wait()), START_POLL_SECONDS)
    return None


async def _stop_worker(worker: asyncio.subprocess.Process) -> int:
    """SIGTERM to the worker (it drains what is in flight), and its exit code."""
    if worker.returncode is None:
        worker.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(worker.wait(), WORKER_EXIT_SECONDS)
        except TimeoutError:
            log.error("serve: the worker did not stop within %.0fs; killing it", WORKER_EXIT_SECONDS)
            worker.kill()
            await worker.wait()
    return worker.returncode if worker.returncode is not None else 1


def die_with_front() -> None:
    """In the worker: exit when the front does (SIGKILLed, say), never linger holding the index's lock."""
    front = int(os.environ.get("WIKIBOT_FRONT_PID") or 0)
    if not front:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != front:  # the front was gone before the line above took effect
        os._exit(1)
    if not sys.platform.startswith("linux"):
        import threading

        def watch() -> None:
            while os.getppid() == front:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="front-watch", daemon=True).start()
