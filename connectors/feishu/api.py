"""The few Feishu Open API calls the bot makes, through lark-oapi, with Feishu's rate-limit manners.

lark-oapi neither retries a rate-limit answer nor refreshes a revoked tenant token:
every call follows the Open API policy of `connectors.feishu.openapi`. Calls run lark-oapi's synchronous methods on a small thread pool of their
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
    CreateMessageRequest,
    CreateMessageRequestBody,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)

from connectors.feishu.openapi import Attempts, FeishuApiError, Policy, forget_tenant_token, read_answer

log = logging.getLogger(__name__)


class FeishuApi:
    def __init__(self, app_id: str, app_secret: str, domain: str, *, timeout: float = 15.0,
                 max_rate_limit_waits: int = 4, max_wait: float = 30.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.app_id = app_id
        self.client = (lark.Client.builder().app_id(app_id).app_secret(app_secret).domain(domain.rstrip("/"))
                       .timeout(timeout).log_level(lark.LogLevel.WARNING).build())
        self.policy = Policy(max_rate_limit_waits=max_rate_limit_waits, max_wait=max_wait)
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
            raise FeishuApiError("bot info", -1, "no bot.open_id in the answer")
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

    async def send_card(self, chat_id: str, card: dict[str, Any], *, uuid: str) -> str:
        """Post a card to a chat (not a reply), e.g. the owners' digest; returns the message's id."""
        body = (CreateMessageRequestBody.builder().receive_id(chat_id).msg_type("interactive")
                .content(_dumps(card)).uuid(uuid[:50]).build())
        req = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body).build()

        async def call() -> Any:
            return await self._run(self.client.im.v1.message.create, req)

        resp = await self._call("send", call)
        return str(resp.data.message_id) if resp.data is not None else ""

    async def update_card(self, message_id: str, card: dict[str, Any]) -> None:
        """Replace a sent card's content (PATCH; the card must have update_multi)."""
        body = PatchMessageRequestBody.builder().content(_dumps(card)).build()
        req = PatchMessageRequest.builder().message_id(message_id).request_body(body).build()

        async def call() -> Any:
            return await self._run(self.client.im.v1.message.patch, req)

        await self._call("card update", call)

    async def request_json(self, what: str, method: str, uri: str, *, query: dict[str, str] | None = None,
                           body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Any Open API call with the tenant token and the same manners; returns the answer's `data`."""
        builder = (lark.BaseRequest.builder().http_method(lark.HttpMethod[method]).uri(uri)
                   .token_types({lark.AccessTokenType.TENANT}))
        if query:
            builder = builder.queries(list(query.items()))
        if body is not None:
            builder = builder.body(body)
        req = builder.build()

        async def call() -> Any:
            return await self._run(self.client.request, req)

        return read_answer(await self._call(what, call)).data

    async def _call(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        attempts = Attempts(self.policy)
        while True:
            try:
                resp = await call()
                answer = read_answer(resp)
            except Exception as exc:  # network trouble, or a body that is not JSON
                decision = attempts.after_error(exc)
                if decision.action == "fail":
                    raise FeishuApiError(what, -1, decision.reason) from exc
                await self._sleep(decision.delay)
                continue
            if answer.ok:
                return resp
            decision = attempts.after_answer(answer)
            if decision.action == "wait":
                self.rate_limited += 1
                log.info("feishu %s rate-limited (code=%s status=%s); waiting %.2fs (wait %d)",
                         what, answer.code, answer.status, decision.delay, attempts.waits)
                await self._sleep(decision.delay)
            elif decision.action == "new_token":
                forget_tenant_token(self.app_id)
            elif decision.action == "retry":
                await self._sleep(decision.delay)
            else:
                raise FeishuApiError(what, answer.code, decision.reason, answer.status)


def _dumps(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False, separators=(",", ":"))
