"""Reading a Feishu wiki through lark-oapi, within Feishu's rate limits.

Every call goes through `WikiClient._call`, which spaces requests out (docx and legacy doc APIs:
`docs_rps`, 5/s documented; node listing: 100/min documented; sheets, Bitable and drive downloads each
their own limiter, `API_RATES`) and follows the Open API policy of
`connectors.feishu.openapi` (rate-limit waits shared by every thread through the limiter, one token
drop, network retries); anything else is a `FeishuApiError`, pinned on one page or one listing.

Bodies are read as plain JSON (`response.raw.content`) rather than the SDK's typed models, so string
ids and new block types pass through untouched. APIs without a typed wrapper in lark-oapi (legacy doc,
sheets v2 values) go through its generic `request`. A drive file is the one exception to the SDK: its
`download` reads the whole body into memory with no limit, so `download` streams it with `requests`
(what lark-oapi itself uses) under the SDK's own tenant token, stopping at the size cap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import lark_oapi as lark
import requests
from lark_oapi.api.docx.v1 import ListDocumentBlockRequest
from lark_oapi.api.wiki.v2 import ListSpaceNodeRequest, ListSpaceRequest
from lark_oapi.core.exception import NoAuthorizationException, ObtainAccessTokenException
from lark_oapi.core.token.manager import TokenManager

from connectors.feishu.wiki.download import Downloaded, error_answer, stream_to

from connectors.feishu.openapi import (
    Attempts,
    FeishuApiError,
    FeishuAuthError,
    Policy,
    forget_tenant_token,
    read_answer,
)

log = logging.getLogger(__name__)

NODES_PAGE_SIZE = 50  # the API's maximum
BLOCKS_PAGE_SIZE = 500  # the API's maximum
# requests per second for the other API families (sheets values: 100/s documented, sheets query and
# Bitable reads: 20/s, drive download: 5/s (unverified)); kept under the documented figures
# drive permission reads (asker mode: a page's sharing settings and members): 5/s, unverified
API_RATES: dict[str, float] = {"sheets": 10.0, "bitable": 10.0, "drive": 4.0, "permissions": 5.0}
class RateLimiter:
    """At most `rate` calls per second on average, with bursts of up to `burst`; thread-safe."""

    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tat = clock()  # "theoretical arrival time" of the next call (GCRA)
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Reserve the next free slot under the lock, then sleep until it outside the lock."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            start = max(now, tat - (self.burst - 1) * self.interval)
            self._tat = tat + self.interval
        if start > now:
            self._sleep(start - now)

    def pause(self, seconds: float) -> None:
        """No call starts for `seconds` (the server said so); every thread sharing the limiter waits."""
        with self._lock:
            self._tat = max(self._tat, self._clock() + seconds + (self.burst - 1) * self.interval)


@dataclass(frozen=True)
class WikiSpace:
    space_id: str
    name: str


@dataclass(frozen=True)
class WikiNode:
    """One node of a space's tree as the wiki API describes it (for a shortcut, obj_* are the target's)."""

    space_id: str
    node_token: str
    obj_token: str
    obj_type: str
    parent_node_token: str
    node_type: str  # origin | shortcut
    origin_node_token: str
    origin_space_id: str
    has_child: bool
    title: str
    obj_edit_time: str  # epoch seconds, as the API sends it

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WikiNode:
        def s(key: str) -> str:
            v = d.get(key)
            return "" if v is None else str(v)

        return cls(space_id=s("space_id"), node_token=s("node_token"), obj_token=s("obj_token"),
                   obj_type=s("obj_type"), parent_node_token=s("parent_node_token"),
                   node_type=s("node_type") or "origin", origin_node_token=s("origin_node_token"),
                   origin_space_id=s("origin_space_id"), has_child=bool(d.get("has_child")),
                   title=s("title"), obj_edit_time=s("obj_edit_time"))


class WikiClient:
    def __init__(self, app_id: str, app_secret: str, domain: str = "https://open.feishu.cn", *,
                 docs_requests_per_second: float = 4.0, list_requests_per_minute: float = 90.0,
                 api_requests_per_second: Mapping[str, float] | None = None,
                 timeout: float = 30.0, max_rate_limit_waits: int = 8,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.app_id = app_id
        self.domain = domain.rstrip("/")
        self.timeout = timeout
        self._lark = (lark.Client.builder().app_id(app_id).app_secret(app_secret)
                      .domain(self.domain).timeout(timeout).log_level(lark.LogLevel.WARNING).build())
        self._docs_limiter = RateLimiter(docs_requests_per_second, sleep=sleep)
        self._list_limiter = RateLimiter(list_requests_per_minute / 60.0, burst=10, sleep=sleep)
        rates = {**API_RATES, **(api_requests_per_second or {})}
        self._limiters = {"docs": self._docs_limiter, "list": self._list_limiter,
                          **{k: RateLimiter(v, burst=2, sleep=sleep) for k, v in rates.items()}}
        self._policy = Policy(max_rate_limit_waits=max_rate_limit_waits)
        self._sleep = sleep

    # ----- the API ---------------------------------------------------------------------------
    def spaces(self) -> list[WikiSpace]:
        """Every space the app is a member of."""
        def build(token: str) -> Any:
            b = ListSpaceRequest.builder().page_size(50)
            return (b.page_token(token) if token else b).build()

        return [WikiSpace(str(i.get("space_id", "")), str(i.get("name", "")))
                for items in self._pages("list wiki spaces", self._lark.wiki.v2.space.list, build,
                                         self._list_limiter) for i in items]

    def children(self, space_id: str, parent_node_token: str = "") -> Iterator[WikiNode]:
        """The child nodes of a node (top-level nodes without a parent), across every result page.

        A page may come back empty with `has_more` true (the API filters what the app may not see
        after paging): keep going while there is a page token.
        """
        def build(token: str) -> Any:
            b = ListSpaceNodeRequest.builder().space_id(space_id).page_size(NODES_PAGE_SIZE)
            if parent_node_token:
                b = b.parent_node_token(parent_node_token)
            return (b.page_token(token) if token else b).build()

        what = f"list nodes of space {space_id} under {parent_node_token or 'the top'}"
        for items in self._pages(what, self._lark.wiki.v2.space_node.list, build, self._list_limiter):
            yield from (WikiNode.from_json(i) for i in items)

    def blocks(self, document_id: str) -> list[dict[str, Any]]:
        """All blocks of a docx document, in document order (the first is the page block)."""
        def build(token: str) -> Any:
            b = (ListDocumentBlockRequest.builder().document_id(document_id).page_size(BLOCKS_PAGE_SIZE)
                 .document_revision_id(-1))
            return (b.page_token(token) if token else b).build()

        return [b for items in self._pages(f"read document {document_id}", self._lark.docx.v1.document_block.list,
                                           build, self._docs_limiter) for b in items]

    def get(self, what: str, uri: str, family: str, paths: Mapping[str, str] | None = None,
            queries: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One GET through lark-oapi's generic request (`:name` in `uri` filled from `paths`, encoded):
        the answer's `data`. `family` picks the rate limiter (docs, sheets, bitable, drive)."""
        return self._call(what, self._lark.request, _get_request(uri, paths, queries), self._limiters[family])

    def post(self, what: str, uri: str, family: str, body: dict[str, Any]) -> dict[str, Any]:
        """One POST through lark-oapi's generic request (a query with a JSON body): the answer's `data`."""
        req = (lark.BaseRequest.builder().http_method(lark.HttpMethod.POST).uri(uri)
               .token_types({lark.AccessTokenType.TENANT}).body(body).build())
        return self._call(what, self._lark.request, req, self._limiters[family])

    def get_pages(self, what: str, uri: str, family: str, paths: Mapping[str, str] | None = None,
                  queries: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The `items` of each result page of a paged GET (`page_token` / `has_more`)."""
        def build(token: str) -> Any:
            return _get_request(uri, paths, {**(queries or {}), **({"page_token": token} if token else {})})

        for data in self._data_pages(what, self._lark.request, build, self._limiters[family]):
            yield list(data.get("items") or [])

    def download(self, what: str, uri: str, dest: IO[bytes], max_bytes: int, deadline: float) -> Downloaded:
        """Stream a drive file into `dest`, at most `max_bytes` (`TooLarge` past it) and until
        `deadline` (time.monotonic; `TimeoutError` past it). Rate limits and token refusals as `_call`."""
        attempts = Attempts(self._policy)
        limiter = self._limiters["drive"]
        while True:
            limiter.acquire()
            try:
                token = TokenManager.get_self_tenant_token(self._lark.config)
            except (ObtainAccessTokenException, NoAuthorizationException) as exc:
                raise FeishuAuthError(what, int(getattr(exc, "code", -1) or -1),
                                      f"cannot get a tenant access token: {getattr(exc, 'msg', exc)}") from None
            try:
                with requests.get(self.domain + uri, headers={"Authorization": f"Bearer {token}"}, stream=True,
                                  timeout=self.timeout) as resp:
                    if resp.status_code == 200 and not resp.headers.get("content-type", "").startswith(
                            "application/json"):
                        return stream_to(dest, resp, max_bytes, deadline)
                    answer = error_answer(resp)
            except requests.RequestException as exc:
                self._after_error(what, attempts, exc)
                continue
            self._after_refusal(what, attempts, answer, limiter)

    def _pages(self, what: str, send: Callable[[Any], Any], build: Callable[[str], Any],
               limiter: RateLimiter) -> Iterator[list[dict[str, Any]]]:
        for data in self._data_pages(what, send, build, limiter):
            yield list(data.get("items") or [])

    def _data_pages(self, what: str, send: Callable[[Any], Any], build: Callable[[str], Any],
                    limiter: RateLimiter) -> Iterator[dict[str, Any]]:
        token, seen = "", set()
        while True:
            data = self._call(what, send, build(token), limiter)
            yield data
            token = str(data.get("page_token") or "")
            if not data.get("has_more") or not token:
                return
            if token in seen:
                raise FeishuApiError(what, -1, "the server repeated a page token")
            seen.add(token)

    # ----- one call, with waiting and retrying ------------------------------------------------
    def _call(self, what: str, send: Callable[[Any], Any], request: Any, limiter: RateLimiter) -> dict[str, Any]:
        attempts = Attempts(self._policy)
        while True:
            limiter.acquire()
            try:
                answer = read_answer(send(request))
            except (ObtainAccessTokenException, NoAuthorizationException) as exc:
                raise FeishuAuthError(what, int(getattr(exc, "code", -1) or -1),
                                      f"cannot get a tenant access token: {getattr(exc, 'msg', exc)}; "
                                      "check FEISHU_APP_ID and FEISHU_APP_SECRET") from None
            except (requests.RequestException, ValueError) as exc:  # no answer, or not JSON
                self._after_error(what, attempts, exc)
                continue
            if answer.ok:
                return answer.data
            self._after_refusal(what, attempts, answer, limiter)


    def _after_error(self, what: str, attempts: Attempts, exc: Exception) -> None:
        """No usable answer: wait before the next attempt, or give up as the policy says."""
        decision = attempts.after_error(exc)
        if decision.action == "fail":
            raise FeishuApiError(what, -1, f"no usable answer: {exc}") from None
        self._sleep(decision.delay)

    def _after_refusal(self, what: str, attempts: Attempts, answer: Any, limiter: RateLimiter) -> None:
        """An error answer: wait out a rate limit, drop a refused token, retry, or raise, as the policy says."""
        decision = attempts.after_answer(answer)
        if decision.action == "wait":
            log.info("rate limited on %s; waiting %.1fs as x-ogw-ratelimit-reset says", what, decision.delay)
            limiter.pause(decision.delay)
            self._sleep(decision.delay)
        elif decision.action == "new_token":
            forget_tenant_token(self.app_id)
        elif decision.action == "retry":
            self._sleep(decision.delay)
        else:
            raise FeishuApiError(what, answer.code, decision.reason, answer.status)


def _get_request(uri: str, paths: Mapping[str, str] | None, queries: Mapping[str, Any] | None) -> Any:
    b = (lark.BaseRequest.builder().http_method(lark.HttpMethod.GET).uri(uri)
         .token_types({lark.AccessTokenType.TENANT}).paths(dict(paths or {})))
    if queries:
        b = b.queries([(str(k), str(v)) for k, v in queries.items()])
    return b.build()
