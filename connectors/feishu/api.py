"""The few Feishu Open API calls the bot makes, through lark-oapi, with Feishu's rate-limit manners.

lark-oapi neither retries a rate-limit answer nor refreshes a revoked tenant token:
this wrapper waits `x-ogw-ratelimit-reset` and retries, and drops a rejected token
once. Calls run lark-oapi's synchronous methods on a small thread pool of their
own: its async methods fetch tokens with blocking `requests` and build a new
httpx client (an SSL context, ~30 ms of CPU) on the event loop for every call,
which under load delays the acknowledgements Feishu expects within 3 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import lark_oapi as lark
from lark_oapi.api.im.v1 import (
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)
from lark_oapi.core.token.manager import TokenManager

log = logging.getLogger(__name__)
RATE_LIMITED = 99991400
TOKEN_INVALID = (99991663, 99991661)


class FeishuApiError(Exception):
    def __init__(self, what: str, code: int | None, msg: str, status: int | None = None) -> None:
        super().__init__(f"{what} failed: code={code} status={status} {msg}")
        self.code = code
        self.status = status


class FeishuApi:
    def __init__(self, app_id: str, app_secret: str, domain: str, *, timeout: float = 15.0,
                 max_attempts: int = 5, max_wait: float = 30.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.app_id = app_id
        self.client = (lark.Client.builder().app_id(app_id).app_secret(app_secret).domain(domain.rstrip("/"))
                       .timeout(timeout).log_level(lark.LogLevel.WARNING).build())
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="feishu-api")
        self.rate_limited = 0  # how many rate-limit answers we waited out (for health/tests)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    async def bot_open_id(self) -> str:
        """The bot's own open_id (GET /open-apis/bot/v3/info; `bot` is top level, not in `data`)."""
        req = (lark.BaseRequest.builder().http_method(lark.HttpMethod.GET).uri("/open-apis/bot/v3/info")
               .token_types({lark.AccessTokenType.TENANT}).build())

        async def call() -> Any:
            return await self._run(self.client.request, req)

        resp = await self._call("bot info", call)
        body = json.loads(resp.raw.content or b"{}")
        open_id = str((body.get("bot") or {}).get("open_id") or "")
        if not open_id:
            raise FeishuApiError("bot info", body.get("code"), "no bot.open_id in the answer")
        return open_id

    async def reply_card(self, message_id: str, card: dict[str, Any], *, in_thread: bool, uuid: str) -> str:
        """Reply to a message with an interactive card; returns the new message's id."""
        body = (ReplyMessageRequestBody.builder().content(_dumps(card)).msg_type("interactive")
                .reply_in_thread(in_thread).uuid(uuid[:50]).build())
        req = ReplyMessageRequest.builder().message_id(message_id).request_body(body).build()

        async def call() -> Any:
            return await self._run(self.client.im.v1.message.reply, req)

        resp = await self._call("reply", call)
        return str(resp.data.message_id) if resp.data is not None else ""

    async def update_card(self, message_id: str, card: dict[str, Any]) -> None:
        """Replace a sent card's content (PATCH; the card must have update_multi)."""
        body = PatchMessageRequestBody.builder().content(_dumps(card)).build()
        req = PatchMessageRequest.builder().message_id(message_id).request_body(body).build()

        async def call() -> Any:
            return await self._run(self.client.im.v1.message.patch, req)

        await self._call("card update", call)

    async def _call(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        dropped_token = False
        for attempt in range(1, self.max_attempts + 1):
            try:
                resp = await call()
            except Exception as exc:  # network trouble, or a body that is not JSON
                if attempt == self.max_attempts:
                    raise FeishuApiError(what, None, f"{type(exc).__name__}: {exc}") from exc
                await self._sleep(min(0.5 * 2 ** (attempt - 1), self.max_wait))
                continue
            status = getattr(resp.raw, "status_code", None)
            code = resp.code
            if code == 0 and (status is None or status < 400):
                return resp
            if code == RATE_LIMITED or status == 429:
                wait = _reset_seconds(resp.raw.headers or {}, self.max_wait)
                self.rate_limited += 1
                log.info("feishu %s rate-limited (code=%s status=%s); waiting %.2fs (attempt %d)",
                         what, code, status, wait, attempt)
                if attempt < self.max_attempts:
                    await self._sleep(wait)
                    continue
            elif code in TOKEN_INVALID and not dropped_token:
                dropped_token = True
                TokenManager.cache.set(f"self_tenant_token:{self.app_id}", "", 0)
                continue
            elif status is not None and status >= 500 and attempt < self.max_attempts:
                await self._sleep(min(0.5 * 2 ** (attempt - 1), self.max_wait))
                continue
            raise FeishuApiError(what, code, str(resp.msg or ""), status)
        raise FeishuApiError(what, RATE_LIMITED, "still rate-limited after retries")


def _reset_seconds(headers: dict[str, str], cap: float) -> float:
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        wait = float(lower.get("x-ogw-ratelimit-reset", "1"))
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.05), cap)


def _dumps(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False, separators=(",", ":"))
