"""How wikibot talks to the Feishu Open API: one error type and one retry policy for every call.

Feishu answers with a JSON body `{code, msg, data}` on any HTTP status. A rate limit is HTTP 429 or
code 99991400 (on any status), with `x-ogw-ratelimit-reset` saying how many seconds until the quota
resets; a tenant token the server stopped accepting is 99991661 / 99991663 (lark-oapi caches tokens
process-wide and never drops a rejected one, so we drop it ourselves, once). A dropped connection
or a 5xx is retried a couple of times; anything else is an error for the caller to pin on one page,
one listing or one reply. The chat side (`connectors.feishu.api`, async) and the wiki side
(`connectors.feishu.wiki.client`, threads) each loop over `Attempts`, sleeping their own way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from lark_oapi.core.token.manager import TokenManager

RATE_LIMITED = 99991400
TOKEN_REJECTED = frozenset({99991661, 99991663})


class FeishuApiError(RuntimeError):
    """An Open API call failed for good; `code` is Feishu's error code (-1: no usable answer)."""

    def __init__(self, what: str, code: int, msg: str, status: int | None = None) -> None:
        super().__init__(f"{what}: Feishu error {code} ({msg})" + (f", HTTP {status}" if status else ""))
        self.code = code
        self.msg = msg
        self.status = status


class FeishuAuthError(FeishuApiError):
    """The app id / secret were refused: nothing can be read."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the Open API, read as plain JSON (so new fields and string ids pass through)."""

    status: int
    headers: dict[str, str]  # lower-case names
    code: int
    msg: str
    data: dict[str, Any]
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.status < 400


def read_answer(response: Any) -> Answer:
    """lark-oapi's response (typed or raw) as an `Answer`; a body that is not Feishu's JSON is code -1."""
    raw = getattr(response, "raw", None)
    status = int(getattr(raw, "status_code", 0) or 0)
    headers = {str(k).lower(): str(v) for k, v in (getattr(raw, "headers", None) or {}).items()}
    try:
        body = json.loads(raw.content) if raw is not None and raw.content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if "code" not in body:
        body = {"code": -1, "msg": f"unexpected answer (HTTP {status})"}
    return Answer(status, headers, _int(body.get("code")), str(body.get("msg") or ""),
                  dict(body.get("data") or {}), body)


def forget_tenant_token(app_id: str) -> None:
    """Make lark-oapi fetch a new tenant token on the next call."""
    TokenManager.cache.set(f"self_tenant_token:{app_id}", "", 0)


@dataclass(frozen=True)
class Policy:
    max_rate_limit_waits: int = 8
    max_network_retries: int = 2
    max_wait: float = 120.0  # the longest rate-limit wait honoured


@dataclass(frozen=True)
class Decision:
    action: Literal["wait", "new_token", "retry", "fail"]
    delay: float = 0.0
    reason: str = ""


@dataclass
class Attempts:
    """The retry state of one call: what to do after each answer or transport error."""

    policy: Policy = field(default_factory=Policy)
    waits: int = 0
    token_drops: int = 0
    network_retries: int = 0

    def after_answer(self, answer: Answer) -> Decision:
        """Called for an answer that is not ok."""
        if answer.status == 429 or answer.code == RATE_LIMITED:
            if self.waits >= self.policy.max_rate_limit_waits:
                return Decision("fail", reason=f"still rate limited after {self.waits} waits")
            self.waits += 1
            return Decision("wait", self.reset_seconds(answer.headers))
        if answer.code in TOKEN_REJECTED and self.token_drops == 0:
            self.token_drops += 1
            return Decision("new_token")
        if answer.status >= 500:
            return self._network_retry(f"HTTP {answer.status}")
        return Decision("fail", reason=answer.msg)

    def after_error(self, exc: BaseException) -> Decision:
        """Called when no usable answer came (connection refused, timed out, not JSON)."""
        return self._network_retry(f"{type(exc).__name__}: {exc}")

    def reset_seconds(self, headers: dict[str, str]) -> float:
        """The header's value, else a growing guess; never more than the policy's longest wait."""
        try:
            value = float(headers["x-ogw-ratelimit-reset"])
        except (KeyError, ValueError):
            value = float(min(2 ** max(self.waits - 1, 0), 30))
        return min(max(value, 0.05), self.policy.max_wait)

    def _network_retry(self, reason: str) -> Decision:
        if self.network_retries >= self.policy.max_network_retries:
            return Decision("fail", reason=reason)
        self.network_retries += 1
        return Decision("retry", 0.5 * 2 ** (self.network_retries - 1), reason)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
