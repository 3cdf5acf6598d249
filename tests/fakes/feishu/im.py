"""Fake Feishu messaging: bot info, message reply, card update, and both ways events reach a bot.

Events go out as Feishu sends them: signed and encrypted HTTP callbacks
(`deliver_webhook`), or pbbp2 protobuf frames over the long connection that the
real `lark_oapi.ws.Client` opens (`POST /callback/ws/endpoint`, then `/ws/v2`).
The message APIs enforce Feishu's 5-per-second limits per card and per chat.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import threading
import time
import uuid as uuidlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lark_oapi.ws.pb.pbbp2_pb2 import Frame
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

BOT_OPEN_ID = "ou_fakebot0000000000000000000001"
CARD_LIMIT_BYTES = 30 * 1024
_ids = itertools.count(1)


@dataclass
class Sent:
    """A message the bot sent (a reply), with every later card update."""

    message_id: str
    source_id: str
    chat_id: str
    msg_type: str
    content: str
    reply_in_thread: bool
    uuid: str
    at: float
    updates: list[tuple[float, str]] = field(default_factory=list)

    @property
    def card(self) -> dict[str, Any]:
        """The card as the user sees it now."""
        return json.loads(self.updates[-1][1] if self.updates else self.content)

    def text(self) -> str:
        return card_text(self.card)


class FakeIM:
    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.bot_open_id = BOT_OPEN_ID
        self.verification_token = "vt"  # what the app's console shows; events carry it in header.token
        self.sent: list[Sent] = []
        self.by_id: dict[str, Sent] = {}
        self.chat_of: dict[str, str] = {}  # user message id -> chat id (registered by event builders)
        self.limit_hits = 0
        self.per_second = 5
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ws: list[_WsConn] = []
        self.ws_connected = threading.Event()

    # ----- for tests ----------------------------------------------------------------------------
    def replies_to(self, source_id: str) -> list[Sent]:
        return [s for s in self.sent if s.source_id == source_id]

    def message_event(self, text: str, **kw: Any) -> dict[str, Any]:
        """A user's message as this app would receive it (and known to the fake, for its chat)."""
        kw.setdefault("token", self.verification_token)
        env = make_message_event(text, bot_open_id=self.bot_open_id, app_id=self.fake.app_id, **kw)
        msg = env["event"]["message"]
        self.chat_of[msg["message_id"]] = msg["chat_id"]
        return env

    def card_action_event(self, sent: Sent, value: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """A click on a button of a card the bot sent."""
        kw.setdefault("token", self.verification_token)
        return make_card_action_event(sent.message_id, value, chat_id=sent.chat_id, **kw)

    # ----- the message APIs --------------------------------------------------------------------
    async def bot_info(self, request: Request) -> JSONResponse:
        if (err := self.fake.check_auth(request)) is not None:
            return err
        return JSONResponse({"code": 0, "msg": "ok", "bot": {
            "activate_status": 2, "app_name": "wikibot", "avatar_url": "", "ip_white_list": [],
            "open_id": self.bot_open_id}})

    async def reply(self, request: Request) -> JSONResponse:
        if (err := self.fake.check_auth(request)) is not None:
            return err
        source = request.path_params["message_id"]
        body = await request.json()
        for s in self.sent:  # Feishu sends a reply with an already used uuid only once
            if body.get("uuid") and s.uuid == body["uuid"]:
                return self.fake.ok(self._message(s))
        chat = self.chat_of.get(source, "oc_unknown")
        if (limited := self._limit(f"chat:{chat}")) is not None:
            return limited
        if (bad := _check_content(body.get("msg_type", ""), body.get("content", ""))) is not None:
            return bad
        sent = Sent(f"om_bot{next(_ids):08d}", source, chat, body["msg_type"], body["content"],
                    bool(body.get("reply_in_thread")), str(body.get("uuid") or ""), time.time())
        with self._lock:
            self.sent.append(sent)
            self.by_id[sent.message_id] = sent
            self.chat_of[sent.message_id] = chat
        return self.fake.ok(self._message(sent))

    async def create(self, request: Request) -> JSONResponse:
        """A message sent to a chat (not a reply): `POST /open-apis/im/v1/messages?receive_id_type=chat_id`."""
        if (err := self.fake.check_auth(request)) is not None:
            return err
        if request.query_params.get("receive_id_type") != "chat_id":
            return self.fake.error(99992402, "field validation failed: receive_id_type", 400)
        body = await request.json()
        for s in self.sent:  # the same uuid within an hour is sent once
            if body.get("uuid") and s.uuid == body["uuid"]:
                return self.fake.ok(self._message(s))
        chat = str(body.get("receive_id") or "")
        if not chat.startswith("oc_"):
            return self.fake.error(230001, "invalid receive_id", 400)
        if (limited := self._limit(f"chat:{chat}")) is not None:
            return limited
        if (bad := _check_content(body.get("msg_type", ""), body.get("content", ""))) is not None:
            return bad
        sent = Sent(f"om_bot{next(_ids):08d}", "", chat, body["msg_type"], body["content"], False,
                    str(body.get("uuid") or ""), time.time())
        with self._lock:
            self.sent.append(sent)
            self.by_id[sent.message_id] = sent
            self.chat_of[sent.message_id] = chat
        return self.fake.ok(self._message(sent))

    async def patch(self, request: Request) -> JSONResponse:
        if (err := self.fake.check_auth(request)) is not None:
            return err
        sent = self.by_id.get(request.path_params["message_id"])
        if sent is None:
            return self.fake.error(230001, "message not found or not sent by this bot", 400)
        if (limited := self._limit(f"message:{sent.message_id}")) is not None:
            return limited
        content = (await request.json()).get("content", "")
        if (bad := _check_content("interactive", content)) is not None:
            return bad
        if not json.loads(sent.content).get("config", {}).get("update_multi"):
            return self.fake.error(230099, "card is not shared (update_multi) and cannot be updated", 400)
        sent.updates.append((time.time(), content))
        return self.fake.ok({})

    def _limit(self, key: str) -> JSONResponse | None:
        """5 requests per second per chat (replies) or per message (updates), as Feishu enforces."""
        now = time.monotonic()
        with self._lock:
            window = self._windows[key]
            while window and window[0] < now - 1.0:
                window.popleft()
            if len(window) >= self.per_second:
                self.limit_hits += 1
                return self.fake.error(99991400, "request trigger frequency limit", 400,
                                       {"x-ogw-ratelimit-limit": str(self.per_second),
                                        "x-ogw-ratelimit-reset": "1"})
            window.append(now)
        return None

    def _message(self, s: Sent) -> dict[str, Any]:
        source_root = s.source_id
        return {"message_id": s.message_id, "root_id": source_root, "parent_id": s.source_id,
                "thread_id": f"omt_{source_root[-8:]}" if s.reply_in_thread else "", "msg_type": s.msg_type,
                "create_time": str(int(s.at * 1000)), "update_time": str(int(s.at * 1000)), "deleted": False,
                "updated": False, "chat_id": s.chat_id, "body": {"content": s.content},
                "sender": {"id": self.fake.app_id, "id_type": "app_id", "sender_type": "app"}}

    # ----- the long connection -----------------------------------------------------------------
    async def ws_endpoint(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("AppID") != self.fake.app_id or body.get("AppSecret") != self.fake.app_secret:
            return JSONResponse({"code": 514, "msg": "auth failed"})
        host = request.url.netloc
        return JSONResponse({"code": 0, "msg": "ok", "data": {
            "URL": f"ws://{host}/ws/v2?device_id={next(_ids)}&service_id=7", "ClientConfig": {
                "ReconnectCount": -1, "ReconnectInterval": 1, "ReconnectNonce": 0, "PingInterval": 30}}})

    async def ws(self, websocket: WebSocket) -> None:
        if "device_id" not in websocket.query_params or "service_id" not in websocket.query_params:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        conn = _WsConn(websocket, asyncio.get_running_loop(), int(websocket.query_params["service_id"]))
        self._ws.append(conn)
        self.ws_connected.set()
        try:
            while True:
                frame = Frame()
                frame.ParseFromString(await websocket.receive_bytes())
                if frame.method == 0 and _header(frame, "type") == "ping":
                    pong = Frame(SeqID=0, LogID=0, service=conn.service_id, method=0)
                    pong.headers.add(key="type", value="pong")
                    await websocket.send_bytes(pong.SerializeToString())
                elif frame.method == 1 and (fut := conn.pending.pop(_header(frame, "message_id"), None)):
                    fut.set_result(json.loads(frame.payload or b"{}"))
        except WebSocketDisconnect:
            pass
        finally:
            self._ws.remove(conn)
            if not self._ws:
                self.ws_connected.clear()

    async def ws_deliver(self, envelope: dict[str, Any], *, parts: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        """Push one event over the long connection; returns the client's answer, `data` decoded."""
        if not self._ws:
            raise RuntimeError("no long connection is open")
        conn = self._ws[-1]
        fut = asyncio.run_coroutine_threadsafe(conn.push(envelope, parts), conn.loop)
        answer = await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
        if answer.get("data"):
            answer["data"] = json.loads(base64.b64decode(answer["data"]))
        return answer

    def ws_close_all(self) -> None:
        for conn in list(self._ws):
            asyncio.run_coroutine_threadsafe(conn.websocket.close(), conn.loop)


@dataclass
class _WsConn:
    websocket: WebSocket
    loop: asyncio.AbstractEventLoop
    service_id: int
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    async def push(self, envelope: dict[str, Any], parts: int) -> dict[str, Any]:
        payload = json.dumps(envelope, ensure_ascii=False).encode()
        msg_id = uuidlib.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self.pending[msg_id] = fut
        size = -(-len(payload) // parts)
        for seq in range(parts):
            frame = Frame(SeqID=next(_ids), LogID=0, service=self.service_id, method=1,
                          payload=payload[seq * size:(seq + 1) * size])
            for k, v in (("type", "event"), ("message_id", msg_id), ("sum", str(parts)), ("seq", str(seq)),
                         ("trace_id", msg_id[:16])):
                frame.headers.add(key=k, value=v)
            await self.websocket.send_bytes(frame.SerializeToString())
        return await fut


def routes(fake: Any) -> list[BaseRoute]:
    im = FakeIM(fake)
    fake.im = im
    return [Route("/open-apis/bot/v3/info", im.bot_info, methods=["GET"]),
            Route("/open-apis/im/v1/messages/{message_id}/reply", im.reply, methods=["POST"]),
            Route("/open-apis/im/v1/messages", im.create, methods=["POST"]),
            Route("/open-apis/im/v1/messages/{message_id}", im.patch, methods=["PATCH"]),
            Route("/callback/ws/endpoint", im.ws_endpoint, methods=["POST"]),
            WebSocketRoute("/ws/v2", im.ws)]


# ----- building and delivering events, as Feishu does -------------------------------------------
def make_message_event(text: str, *, chat_type: str = "group", chat_id: str = "oc_chat0001",
                       user: str = "ou_user0001", mention_bot: bool = True, bot_open_id: str = BOT_OPEN_ID,
                       others: tuple[tuple[str, str], ...] = (), message_id: str = "", root_id: str = "",
                       message_type: str = "text", event_id: str = "", token: str = "vt",
                       app_id: str = "cli_test_app") -> dict[str, Any]:
    """An im.message.receive_v1 envelope; mentions become `@_user_N` placeholders, bot first."""
    mentions, placeholders = [], []
    people = ([("wikibot", bot_open_id)] if mention_bot else []) + list(others)
    for i, (name, open_id) in enumerate(people, 1):
        mentions.append({"key": f"@_user_{i}", "id": {"open_id": open_id, "union_id": f"on_{open_id[3:]}",
                                                     "user_id": None}, "name": name, "tenant_key": "tk"})
        placeholders.append(f"@_user_{i}")
    full = " ".join(placeholders + [text]).strip()
    if message_type == "text":
        content = json.dumps({"text": full}, ensure_ascii=False)
    elif message_type == "post":
        row = [{"tag": "at", "user_id": p, "user_name": n} for p, (n, _) in zip(placeholders, people, strict=True)]
        content = json.dumps({"title": "", "content": [row + [{"tag": "text", "text": text}]]}, ensure_ascii=False)
    else:
        content = json.dumps({"image_key": "img_v3_fake"})
    now = str(int(time.time() * 1000))
    mid = message_id or f"om_user{next(_ids):08d}"
    return {"schema": "2.0", "header": {
        "event_id": event_id or uuidlib.uuid4().hex, "event_type": "im.message.receive_v1", "create_time": now,
        "token": token, "app_id": app_id, "tenant_key": "tk"},
        "event": {"sender": {"sender_id": {"open_id": user, "union_id": f"on_{user[3:]}", "user_id": None},
                             "sender_type": "user", "tenant_key": "tk"},
                  "message": {"message_id": mid, "root_id": root_id, "parent_id": root_id, "create_time": now,
                              "update_time": now, "chat_id": chat_id, "thread_id": "", "chat_type": chat_type,
                              "message_type": message_type, "content": content,
                              **({"mentions": mentions} if mentions else {})}}}


def make_card_action_event(message_id: str, value: dict[str, Any], *, user: str = "ou_user0001",
                           chat_id: str = "oc_chat0001", token: str = "vt") -> dict[str, Any]:
    return {"schema": "2.0", "header": {
        "event_id": uuidlib.uuid4().hex, "token": token, "create_time": str(int(time.time() * 1e6)),
        "event_type": "card.action.trigger", "tenant_key": "tk", "app_id": "cli_test_app"},
        "event": {"operator": {"tenant_key": "tk", "open_id": user, "union_id": f"on_{user[3:]}"},
                  "token": "c-" + uuidlib.uuid4().hex, "host": "im_message",
                  "action": {"tag": "button", "value": value, "timezone": "Asia/Shanghai"},
                  "context": {"open_message_id": message_id, "open_chat_id": chat_id}}}


def encrypt(plaintext: str | bytes, key: str, iv: bytes | None = None) -> str:
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    iv = iv or os.urandom(16)
    enc = Cipher(algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(padded) + enc.finalize()).decode()


def sign(timestamp: str, nonce: str, key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + key).encode() + body).hexdigest()


async def deliver_webhook(url: str, envelope: dict[str, Any], *, encrypt_key: str = "",
                          timestamp: str | None = None, nonce: str | None = None,
                          signature: str | None = None, headers: dict[str, str] | None = None,
                          client: httpx.AsyncClient | None = None) -> httpx.Response:
    """POST the event as Feishu does: encrypted and signed when there is an encrypt key."""
    body = json.dumps(envelope, ensure_ascii=False).encode()
    hdrs = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Go-http-client/1.1"}
    if encrypt_key:
        body = json.dumps({"encrypt": encrypt(body, encrypt_key)}).encode()
        ts = timestamp or str(int(time.time()))
        nonce = nonce or uuidlib.uuid4().hex[:16]
        hdrs.update({"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce,
                     "X-Lark-Signature": signature or sign(ts, nonce, encrypt_key, body)})
    hdrs.update(headers or {})
    if client is not None:
        return await client.post(url, content=body, headers=hdrs)
    async with httpx.AsyncClient(timeout=10) as own:
        return await own.post(url, content=body, headers=hdrs)


def card_text(card: dict[str, Any]) -> str:
    """All visible text of a card (markdown and button labels), for assertions."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("tag") in ("markdown", "plain_text") and isinstance(node.get("content"), str):
                out.append(node["content"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card.get("header", {}))
    walk(card.get("body", card.get("elements", [])))
    return "\n".join(out)


def _check_content(msg_type: str, content: str) -> JSONResponse | None:
    if len(content.encode()) > CARD_LIMIT_BYTES:
        return JSONResponse({"code": 230025, "msg": "message content exceeds the length limit"}, 400)
    try:
        body = json.loads(content)
    except ValueError:
        return JSONResponse({"code": 230001, "msg": "content is not valid JSON"}, 400)
    if msg_type == "interactive" and body.get("schema") == "2.0":
        elements = body.get("body", {}).get("elements")
        if not isinstance(elements, list):
            return JSONResponse({"code": 200621, "msg": "card body.elements missing"}, 400)
        if '"tag": "action"' in json.dumps(body) or '"tag":"action"' in content:
            return JSONResponse({"code": 200861, "msg": "cards of schema V2 no longer support this capability"},
                                400)
    return None


def _header(frame: Frame, key: str) -> str:
    return next((h.value for h in frame.headers if h.key == key), "")
