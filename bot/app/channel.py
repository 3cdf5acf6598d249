"""The local channel between `serve`'s two processes: HTTP requests as frames over a Unix socket.

The front (bot/app/front.py) owns the public port; the worker (everything else in `serve`) owns the
index, the models and the adapters. The front passes a request on as one frame and, when it needs the
answer, gets the worker's response back as one frame. A frame is a 4-byte big-endian length and a JSON
object; bodies are base64. No streaming: every request and response of `serve` is small (bodies are
capped at `max_request_bytes` before they get here).

Frames:
- `request`: `id`, `method`, `path`, `query`, `headers` ([name, value] pairs, latin-1), `client`
  ([host, port] or null), `body`, `reply` (false: the front has acknowledged it already, send nothing
  back), `acked_seconds` (with `reply` false: how long the front took to acknowledge it);
- `response`: `id`, `status`, `headers`, `body`;
- `event`: `id`, `platform`, `payload`, `reply`, `acked_seconds` — an event the front took off a
  platform's connection (Feishu's long connection, Slack's Socket Mode), for that adapter's `receive`;
  its `response` carries `payload`, the acknowledgement payload;
- `rejected`: `platform`, `reason` — a request the front refused itself (413), for the worker's metrics.

The worker runs each request through its own ASGI app exactly as if it had come over HTTP, so every
check, count and log line is the same whichever process received it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.adapters import ACKED_BY_FRONT

log = logging.getLogger(__name__)

Frame = dict[str, Any]
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                    Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]
_LENGTH = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ChannelClosed(Exception):
    """The other process closed the channel (it exited, or is exiting)."""


def encode(frame: Frame) -> bytes:
    data = json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _LENGTH.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    try:
        (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        if size > MAX_FRAME_BYTES:
            raise ChannelClosed(f"frame of {size} bytes")
        frame = json.loads(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise ChannelClosed(type(exc).__name__) from None
    if not isinstance(frame, dict):
        raise ChannelClosed("frame is not an object")
    return frame


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def request_frame(scope: dict[str, Any], body: bytes) -> Frame:
    client = scope.get("client")
    return {"kind": "request", "method": scope["method"], "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers") or ()],
            "client": list(client) if client else None, "body": base64.b64encode(body).decode("ascii")}


# ----- the front's side ---------------------------------------------------------------------------
def http_response(frame: Frame) -> Response:
    return Response(int(frame["status"]), [(k.encode("latin-1"), v.encode("latin-1")) for k, v in frame["headers"]],
                    base64.b64decode(frame["body"]))


class ChannelClient:
    """The front's connection to the worker: `ask` waits for the response, `hand_over` does not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Frame]] = {}
        self._reading = asyncio.create_task(self._read_responses())
        self.closed = False

    @classmethod
    async def connect(cls, path: str) -> ChannelClient:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_FRAME_BYTES)
        return cls(reader, writer)

    def hand_over(self, frame: Frame) -> None:
        """Send a request the front has acknowledged; the worker answers nothing back."""
        self._send({**frame, "id": next(self._ids), "reply": False})

    def tell(self, frame: Frame) -> None:
        self._send(frame)

    async def ask(self, frame: Frame, timeout: float) -> Frame:
        """Send a request or event frame and wait (at most `timeout`) for the worker's response frame."""
        ident = next(self._ids)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        try:
            self._send({**frame, "id": ident, "reply": True})
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiting.pop(ident, None)

    def _send(self, frame: Frame) -> None:
        if self.closed:
            raise ChannelClosed("the worker's channel is closed")
        self._writer.write(encode(frame))  # one write per frame: frames never interleave

    async def _read_responses(self) -> None:
        try:
            while True:
                frame = await read_frame(self._reader)
                future = self._waiting.get(int(frame.get("id") or 0))
                if future is not None and not future.done():
                    future.set_result(frame)
        except ChannelClosed as exc:
            log.info("worker channel closed (%s)", exc)
        finally:
            self.closed = True
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ChannelClosed("the worker closed the channel"))

    async def aclose(self) -> None:
        self.closed = True
        self._writer.close()
        self._reading.cancel()
        try:
            await self._reading
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing
            pass


# ----- the worker's side --------------------------------------------------------------------------
OnEvent = Callable[[str, dict[str, Any], "float | None"], Awaitable[dict[str, Any]]]


class ChannelServer:
    """The worker's end: runs each request frame through `app` (the same ASGI app uvicorn would run), and
    each event frame through `on_event(platform, payload, acked_seconds)`."""

    def __init__(self, app: ASGIApp, on_event: OnEvent, on_rejected: Callable[[str, str], None]) -> None:
        self.app = app
        self.on_event = on_event
        self.on_rejected = on_rejected
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._connection, path, limit=MAX_FRAME_BYTES)

    async def close(self) -> None:
        """Finish the requests in hand (bounded), then end the connections so their readers stop."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        for writer in list(self._connections):
            writer.close()
        await asyncio.sleep(0)  # the readers see the end of their streams

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                frame = await read_frame(reader)
                if frame.get("kind") == "rejected":
                    self.on_rejected(str(frame.get("platform") or "other"), str(frame.get("reason") or "?"))
                elif frame.get("kind") in ("request", "event"):
                    task = asyncio.create_task(self._serve(frame, writer))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except ChannelClosed:
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _serve(self, frame: Frame, writer: asyncio.StreamWriter) -> None:
        if frame["kind"] == "event":
            reply = await self._event(frame)
        else:
            response = await run_asgi(self.app, frame)
            if response.status >= 400 and not frame.get("reply"):
                log.info("%s %s acknowledged by the front, refused here with %s", frame.get("method"),
                         frame.get("path"), response.status)
            reply = {"status": response.status,
                     "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers],
                     "body": base64.b64encode(response.body).decode("ascii")}
        if frame.get("reply") and not writer.is_closing():
            writer.write(encode({"kind": "response", "id": frame.get("id"), **reply}))

    async def _event(self, frame: Frame) -> Frame:
        acked = frame.get("acked_seconds")
        try:
            payload = await self.on_event(str(frame.get("platform")), dict(frame.get("payload") or {}),
                                          float(acked) if acked is not None and not frame.get("reply") else None)
        except Exception:
            log.exception("%s event from the front failed", frame.get("platform"))
            payload = {}
        return {"payload": payload}


async def run_asgi(app: ASGIApp, frame: Frame) -> Response:
    """One request frame through an ASGI app; its whole response."""
    body = base64.b64decode(frame.get("body") or "")
    path = str(frame["path"])
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": str(frame["method"]), "scheme": "http", "path": path, "raw_path": path.encode("utf-8"),
        "query_string": str(frame.get("query") or "").encode("latin-1"), "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in frame.get("headers") or ()],
        "client": tuple(frame["client"]) if frame.get("client") else None, "server": None, "state": {}}
    if not frame.get("reply") and frame.get("acked_seconds") is not None:
        scope[ACKED_BY_FRONT] = float(frame["acked_seconds"])
    body_sent, finished = False, asyncio.Event()
    status, headers, chunks = 500, [], []

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = int(message["status"]), list(message.get("headers") or [])
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body") or b""))
            if not message.get("more_body"):
                finished.set()

    try:
        await app(scope, receive, send)
    except Exception:
        log.exception("%s %s failed", frame.get("method"), path)
        return Response(500, [(b"content-type", b"application/json")], b'{"error":"internal error"}')
    finally:
        finished.set()
    return Response(status, headers, b"".join(chunks))
