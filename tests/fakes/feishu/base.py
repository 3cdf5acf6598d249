"""The shared part of the fake Feishu Open API: auth, the reply envelope, failure injection.

Feature modules (`wiki.py`, `im.py`, ...) each define `routes(fake) -> list[Route]`
and are mounted here, so one server speaks every API a test needs, like the real one.
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer

FEATURE_MODULES = ("tests.fakes.feishu.wiki", "tests.fakes.feishu.im", "tests.fakes.feishu.contact",
                   "tests.fakes.feishu.permissions")


@dataclass
class Injected:
    """A canned failure for the next `times` requests whose path contains `path_contains`."""

    path_contains: str
    times: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeFeishu:
    def __init__(self, app_id: str = "cli_test_app", app_secret: str = "test-secret",
                 token_ttl: int = 7200) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.requests: list[tuple[str, str, float]] = []  # (method, path, time)
        self._injected: list[Injected] = []
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        routes = [Route("/open-apis/auth/v3/tenant_access_token/internal", self._token, methods=["POST"])]
        for name in FEATURE_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                continue
            routes.extend(module.routes(self))
        self.app = Starlette(routes=routes)
        self.app.add_middleware(_Recorder, fake=self)
        self._server: LoopbackServer | None = None

    # ----- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return self._server.url

    def start(self) -> "FakeFeishu":
        self._server = LoopbackServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.stop()

    def __enter__(self) -> "FakeFeishu":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- helpers for feature modules --------------------------------------------------------
    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter):06d}"

    @staticmethod
    def ok(data: dict[str, Any] | None = None, **top: Any) -> JSONResponse:
        body: dict[str, Any] = {"code": 0, "msg": "success"}
        if data is not None:
            body["data"] = data
        body.update(top)
        return JSONResponse(body)

    @staticmethod
    def error(code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)

    def check_auth(self, request: Request) -> JSONResponse | None:
        """None if the request carries a valid tenant token, else Feishu's error reply."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return self.error(99991661, "Missing access token for authorization", 400)
        expiry = self.tokens.get(auth[len("Bearer "):])
        if expiry is None or expiry < time.time():
            return self.error(99991663, "Invalid access token for authorization", 400)
        return None

    # ----- failure injection ------------------------------------------------------------------
    def inject(self, path_contains: str, *, times: int = 1, status: int = 429, code: int = 99991400,
               msg: str = "request trigger frequency limit", headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` matching requests with an error (default: Feishu's rate limit)."""
        if headers is None and code == 99991400:
            headers = {"x-ogw-ratelimit-limit": "5", "x-ogw-ratelimit-reset": "1"}
        with self._lock:
            self._injected.append(Injected(path_contains, times, status, {"code": code, "msg": msg},
                                           headers or {}))

    def _take_injected(self, path: str) -> Injected | None:
        with self._lock:
            for inj in self._injected:
                if inj.path_contains in path and inj.times > 0:
                    inj.times -= 1
                    return inj
        return None

    def count(self, path_contains: str, method: str | None = None) -> int:
        return sum(1 for m, p, _ in self.requests if path_contains in p and (method is None or m == method))

    # ----- the token endpoint -----------------------------------------------------------------
    async def _token(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("app_id") != self.app_id or body.get("app_secret") != self.app_secret:
            return self.error(10014, "app secret invalid", 400)
        token = f"t-{self.next_id('tok')}"
        self.tokens[token] = time.time() + self.token_ttl
        # the token is at the top level, not in `data`
        return JSONResponse({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": self.token_ttl})


class _Recorder:
    """Records every request and serves injected failures before the route runs."""

    def __init__(self, app: Any, fake: FakeFeishu) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.fake.requests.append((scope["method"], path, time.time()))
        inj = self.fake._take_injected(path)
        if inj is not None:
            resp = JSONResponse(inj.body, status_code=inj.status, headers=inj.headers)
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)
