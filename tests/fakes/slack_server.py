"""A fake Slack Web API (and Socket Mode server) on 127.0.0.1 that speaks the documented wire format.

The real `slack_sdk` / `slack_bolt` clients talk to it over HTTP. Like Slack it
reads arguments from the query string, a form body or a JSON body (slack-sdk
sends chat.* as JSON, auth.test with query args, and bolt adds `?team_id=`),
answers `{"ok": false, "error": ...}` on errors (HTTP 200, except 429 with
`Retry-After`), refuses Block Kit that breaks the documented limits with
`invalid_blocks`, and answers `auth.test` with both `user_id` and `bot_id`
(without `bot_id` bolt silently stops ignoring the bot's own messages).
Tests inject failures with `fail_next`, and read what happened in `calls`,
`messages` (the current state of each posted message) and `responses`
(posts to a slash command's or button's `response_url`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.loopback import LoopbackServer
from tests.fakes.slack_blocks import validate_blocks


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Posted:
    """A message as Slack currently shows it; `versions` keeps every text it had, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str = ""
    user: str = ""
    versions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None


class FakeSlack:
    def __init__(self, token: str = "xoxb-test-token", *, app_token: str = "xapp-test-token",
                 bot_user_id: str = "UWIKIBOT", bot_id: str = "BWIKIBOT", team_id: str = "T0TEAM") -> None:
        self.token, self.app_token = token, app_token
        self.bot_user_id, self.bot_id, self.team_id = bot_user_id, bot_id, team_id
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Posted] = {}
        self.ephemeral: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # {"path", "body"} posted to a response_url
        self.reactions: set[tuple[str, str, str]] = set()
        self.not_in: set[str] = set()  # channels where the bot is not a member (not_in_channel)
        self.users: dict[str, dict[str, Any]] = {}  # users.info: user id -> the `user` object
        self.channel_members: dict[str, list[str]] = {}  # conversations.members: channel -> user ids
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self.socket_ack_at: dict[str, float] = {}  # time.monotonic() when each envelope's ack arrived
        self._lock = threading.Lock()
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._ts = itertools.count(1)
        self._sockets: list[tuple[WebSocket, asyncio.AbstractEventLoop]] = []
        self._server: LoopbackServer | None = None
        self.app = Starlette(routes=[
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/response/{rid:path}", self._response_url, methods=["POST"]),
            WebSocketRoute("/socket", self._socket),
        ])

    # ----- test API ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return self._server.url

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str = "cmd") -> str:
        return f"{self.url}/response/{self.team_id}/{next(self._ts)}/{name}"

    def fail_next(self, method: str, error: str = "ratelimited", *, status: int | None = None,
                  retry_after: int | None = 1, times: int = 1) -> None:
        """The next `times` calls of `method` fail; `ratelimited` answers HTTP 429 with `Retry-After`."""
        status = status or (429 if error == "ratelimited" else 200)
        with self._lock:
            self._failures[method].extend([_Failure(error, status, retry_after)] * times)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None, thread_ts: str | None = None) -> list[Posted]:
        """Messages posted (not ephemeral), oldest first, optionally of one channel and thread."""
        with self._lock:
            out = [m for m in self.messages.values()
                   if (channel is None or m.channel == channel) and (thread_ts is None or m.thread_ts == thread_ts)]
        return sorted(out, key=lambda m: float(m.ts))

    def add_message(self, channel: str, text: str, *, user: str = "UHUMAN", thread_ts: str = "") -> str:
        """A message someone else wrote (for conversations.replies and reactions)."""
        ts = self._next_ts()
        with self._lock:
            self.messages[(channel, ts)] = Posted(channel, ts, text, [], thread_ts, user)
        return ts

    # ----- Web API -----------------------------------------------------------------------------
    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        args = await _read_args(request)
        with self._lock:
            self.calls.append(Call(method, args, dict(request.headers)))
            failure = self._failures[method].popleft() if self._failures[method] else None
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return JSONResponse({"ok": False, "error": failure.error}, status_code=failure.status, headers=headers)
        token = _bearer(request) or str(args.get("token") or "")
        expected = self.app_token if method == "apps.connections.open" else self.token
        if not token:
            return _error("not_authed")
        if token != expected:
            return _error("invalid_auth")
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("unknown_method")
        return JSONResponse(handler(args))

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://wikibot-test.slack.com/", "team": "Wikibot Test", "user": "wikibot",
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, problem = self._message_args(args)
        if problem:
            return problem
        ts = self._next_ts()
        thread = str(args.get("thread_ts") or "")
        msg = Posted(channel, ts, str(args.get("text") or ""), list(args.get("blocks") or []), thread,
                     self.bot_user_id, [_version(args)])
        with self._lock:
            self.messages[(channel, ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": _wire(msg, self.bot_id)}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, problem = self._message_args(args)
        if problem:
            return problem
        ts = str(args.get("ts") or "")
        with self._lock:
            msg = self.messages.get((channel, ts))
            if msg is None:
                return {"ok": False, "error": "message_not_found"}
            if msg.user != self.bot_user_id:
                return {"ok": False, "error": "cant_update_message"}
            msg.text, msg.blocks = str(args.get("text") or ""), list(args.get("blocks") or [])
            msg.versions.append(_version(args))
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.text, "message": _wire(msg, self.bot_id)}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        _, problem = self._message_args(args)
        if problem:
            return problem
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        with self._lock:
            self.ephemeral.append(dict(args))
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, root = str(args.get("channel") or ""), str(args.get("ts") or "")
        with self._lock:
            if (channel, root) not in self.messages:
                return {"ok": False, "error": "thread_not_found"}
            thread = [m for m in self.messages.values()
                      if m.channel == channel and (m.ts == root or m.thread_ts == root)]
        thread.sort(key=lambda m: float(m.ts))
        return {"ok": True, "messages": [_wire(m, self.bot_id) for m in thread], "has_more": False,
                "response_metadata": {"next_cursor": ""}}

    def add_user(self, user_id: str, email: str = "", *, is_bot: bool = False) -> None:
        self.users[user_id] = {"id": user_id, "team_id": self.team_id, "name": user_id.lower(), "deleted": False,
                               "is_bot": is_bot, "profile": {"real_name": user_id, **({"email": email} if email else {})}}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _m_conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        members = self.channel_members.get(str(args.get("channel") or ""))
        if members is None:
            return {"ok": False, "error": "channel_not_found"}
        limit, start = int(args.get("limit") or 100), int(args.get("cursor") or 0)
        page, nxt = members[start:start + limit], start + limit
        return {"ok": True, "members": page,
                "response_metadata": {"next_cursor": str(nxt) if nxt < len(members) else ""}}

    def _m_reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel") or ""), str(args.get("timestamp") or ""), str(args.get("name") or ""))
        with self._lock:
            if key[:2] not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            if key in self.reactions:
                return {"ok": False, "error": "already_reacted"}
            self.reactions.add(key)
        return {"ok": True}

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self.url.replace("http://", "ws://")
        return {"ok": True, "url": f"{ws}/socket?ticket=t-{next(self._ts)}&app_id=A0WIKIBOT"}

    def _message_args(self, args: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        channel = str(args.get("channel") or "")
        if not channel:
            return channel, {"ok": False, "error": "channel_not_found"}
        if channel in self.not_in:
            return channel, {"ok": False, "error": "not_in_channel"}
        blocks = args.get("blocks")
        if not args.get("text") and not blocks:
            return channel, {"ok": False, "error": "no_text"}
        errors = validate_blocks(blocks or [])
        if errors:
            return channel, {"ok": False, "error": "invalid_blocks", "errors": errors}
        return channel, None

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # ----- response_url ------------------------------------------------------------------------
    async def _response_url(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        errors = validate_blocks(body.get("blocks") or [])
        with self._lock:
            self.responses.append({"path": request.url.path, "body": body})
        if errors:
            return PlainTextResponse("invalid_blocks", status_code=400)
        return PlainTextResponse("ok")

    # ----- Socket Mode -------------------------------------------------------------------------
    async def _socket(self, ws: WebSocket) -> None:
        await ws.accept()
        entry = (ws, asyncio.get_running_loop())
        with self._lock:
            self._sockets.append(entry)
        await ws.send_text(json.dumps({"type": "hello", "num_connections": len(self._sockets),
                                       "debug_info": {"host": "fake-slack"},
                                       "connection_info": {"app_id": "A0WIKIBOT"}}))
        try:
            while True:
                ack = json.loads(await ws.receive_text())
                with self._lock:
                    self.socket_ack_at[str(ack.get("envelope_id"))] = time.monotonic()
                    self.socket_acks[str(ack.get("envelope_id"))] = ack
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            with self._lock:
                self._sockets.remove(entry)

    @property
    def socket_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    def socket_send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0,
                    retry_reason: str = "") -> str:
        """Push one envelope (`events_api`, `slash_commands`, `interactive`) to the newest connection."""
        envelope_id = f"env-{next(self._ts)}"
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": kind != "events_api", "retry_attempt": retry_attempt,
                    "retry_reason": retry_reason}
        with self._lock:
            if not self._sockets:
                raise RuntimeError("no socket mode connection")
            ws, loop = self._sockets[-1]
        asyncio.run_coroutine_threadsafe(ws.send_text(json.dumps(envelope)), loop).result(5)
        return envelope_id

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        self._server = LoopbackServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _read_args(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    if raw and ctype.startswith("application/json"):
        args.update(json.loads(raw))
    elif raw:
        args.update(dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)))
    for key in ("blocks", "attachments", "metadata"):
        if isinstance(args.get(key), str) and args[key]:
            args[key] = json.loads(args[key])
    return args


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else ""


def _error(error: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error})


def _version(args: dict[str, Any]) -> dict[str, Any]:
    return {"text": args.get("text"), "blocks": args.get("blocks"), "at": time.monotonic()}


def _wire(m: Posted, bot_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "message", "ts": m.ts, "user": m.user, "text": m.text, "blocks": m.blocks}
    if m.thread_ts:
        out["thread_ts"] = m.thread_ts
    if m.versions:
        out["bot_id"] = bot_id
    return out
