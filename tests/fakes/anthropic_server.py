"""A fake Anthropic Messages API on 127.0.0.1 that speaks the documented wire format.

The real `anthropic` SDK talks to it over HTTP, so tests exercise the SDK's own SSE parsing, error
classes and retries rather than a mock of them. Things the fake checks, like the real API:
the API key (`x-api-key`, or `Authorization: Bearer`, which anthropic 2.x sends), the presence of
`anthropic-version`, and the request shape (non-empty text blocks; `search_result` blocks with
non-empty text content and one citations setting for all of them).

The default reply is built from the request and is deterministic: an uncited opening block, then one
block per `search_result` (at most two), each citing that result with a `search_result_location`;
Chinese if the question has CJK characters, else English. Tests can `script()` the blocks instead,
`fail_next()` a failure, or set `delay_seconds` before the answer starts.

Tool use: `tools` are validated (name, object `input_schema`; a forced `tool_choice` must name one of
them). A forced tool call is answered with one `tool_use` block (stop_reason `tool_use`; streamed as
`input_json_delta` pieces) whose input is `tool_input(...)`'s, or by default for the coverage check
`{"verdict": "full", ...}` (`"none"` when there are no search results). Mid-stream failures apply to
the next *streamed* request only, as a non-streamed reply cannot break off mid-stream.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer

FailureKind = Literal["rate_limit", "overloaded", "server", "stream_error", "disconnect", "truncate", "stall"]
FAILURE_KINDS: tuple[str, ...] = ("rate_limit", "overloaded", "server", "stream_error", "disconnect", "truncate",
                                  "stall")
# (cited text, index of the cited search_result or None); the same shape `script()` takes.
Block = tuple[str, "int | None"]

_HTTP_FAILURES = {
    "rate_limit": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server": (500, "api_error", "Internal server error"),
}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ids = itertools.count(1)


class FakeAnthropic:
    """State and ASGI app of the fake; `start()` serves it on a free loopback port."""

    def __init__(self, api_key: str = "sk-ant-fake-test-key", *, chunk_chars: int = 6) -> None:
        self.api_key = api_key
        self.chunk_chars = chunk_chars
        self.requests: list[dict[str, Any]] = []  # every JSON body POSTed, including rejected ones
        self.headers: list[dict[str, str]] = []  # the headers of each of those requests
        self.arrivals: list[float] = []  # time.monotonic() when each of those requests arrived
        self.delay_seconds = 0.0  # before any answer (or failure) starts: for client timeouts
        self.stall_seconds = 30.0  # how long a "stall" failure goes silent mid-stream
        self.retry_after = "1"  # the `retry-after` header of a 429
        self.stop_reason = "end_turn"
        self._lock = threading.Lock()
        self._failures: deque[str] = deque()
        self._script: list[Block] | None = None
        self._tool_input: dict[str, Any] | None = None
        self._server: LoopbackServer | None = None
        self.app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    # ----- test API ----------------------------------------------------------------------------------
    @property
    def answer_requests(self) -> list[dict[str, Any]]:
        """The requests that asked for an answer (not a forced tool call such as the coverage verdict)."""
        return [r for r in self.requests if not r.get("tools")]

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return self._server.url

    def fail_next(self, kind: FailureKind, times: int = 1) -> None:
        """Make the next `times` requests fail: HTTP 429/529/500, or mid-stream after the first piece of
        text (an error event, a dropped connection, a clean end without message_stop, or silence for
        `stall_seconds`)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; one of {FAILURE_KINDS}")
        with self._lock:
            self._failures.extend([kind] * times)

    def script(self, blocks: Sequence[Block] | None) -> None:
        """Answer every request with these (text, cited search_result index or None) blocks;
        None goes back to the default reply."""
        self._script = None if blocks is None else list(blocks)

    def tool_input(self, value: dict[str, Any] | None) -> None:
        """The input of every forced tool call from now on; None goes back to the default."""
        self._tool_input = None if value is None else dict(value)

    def start(self) -> Self:
        self._server = LoopbackServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- the endpoint ------------------------------------------------------------------------------
    async def _messages(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.headers.append(dict(request.headers))
        self.requests.append(body if isinstance(body, dict) else {"_raw": raw.decode("utf-8", "replace")})
        self.arrivals.append(time.monotonic())

        if not self._authorized(request):
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "The request body is not valid JSON.")
        problem = _validate(body)
        if problem:
            return _error(400, "invalid_request_error", problem)

        if self.delay_seconds > 0 and not await _sleep_unless_gone(request, self.delay_seconds):
            return Response(status_code=499)
        with self._lock:
            failure = None
            if self._failures and (body.get("stream") or self._failures[0] in _HTTP_FAILURES):
                failure = self._failures.popleft()
        if failure in _HTTP_FAILURES:
            status, err_type, err_message = _HTTP_FAILURES[failure]
            headers = {"retry-after": self.retry_after} if status == 429 else {}
            return _error(status, err_type, err_message, headers)

        results = _search_results(body)
        forced = (body.get("tool_choice") or {}).get("name") if (body.get("tool_choice") or {}).get("type") == "tool" \
            else None
        if forced:
            tool_in = self._tool_input if self._tool_input is not None else _default_tool_input(forced, results)
            message = _tool_message(body, forced, tool_in)
        else:
            blocks = self._script if self._script is not None else _default_blocks(body, results)
            message = _message(body, blocks, results, self.stop_reason)
        request_id = {"request-id": message["id"].replace("msg_", "req_")}
        if not body.get("stream"):
            return JSONResponse(message, headers=request_id)
        return StreamingResponse(self._events(message, failure), media_type="text/event-stream; charset=utf-8",
                                 headers={**request_id, "cache-control": "no-cache"})

    def _authorized(self, request: Request) -> bool:
        bearer = request.headers.get("authorization", "")
        return (request.headers.get("x-api-key") == self.api_key
                or bearer == f"Bearer {self.api_key}")

    async def _events(self, message: dict[str, Any], failure: str | None) -> AsyncIterator[str]:
        """The documented event sequence; a failure cuts in after the first text delta."""
        content, usage = message["content"], message["usage"]
        start = {**message, "content": [], "stop_reason": None,
                 "usage": {**usage, "output_tokens": 1}}
        yield _sse("message_start", {"type": "message_start", "message": start})
        for i, block in enumerate(content):
            if block["type"] == "tool_use":
                yield _sse("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {**block, "input": {}}})
                raw = json.dumps(block["input"], ensure_ascii=False)
                for pos in range(0, len(raw), self.chunk_chars):
                    yield _delta(i, {"type": "input_json_delta", "partial_json": raw[pos:pos + self.chunk_chars]})
                yield _sse("content_block_stop", {"type": "content_block_stop", "index": i})
                continue
            yield _sse("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "text", "text": ""}})
            if i == 0:
                yield _sse("ping", {"type": "ping"})
            for citation in block.get("citations", []):
                yield _delta(i, {"type": "citations_delta", "citation": citation})
            text = block["text"]
            for pos in range(0, len(text), self.chunk_chars):
                yield _delta(i, {"type": "text_delta", "text": text[pos:pos + self.chunk_chars]})
                if failure is not None:
                    async for piece in self._fail_mid_stream(failure):
                        yield piece
                    return
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": i})
        yield _sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": usage["output_tokens"]}})
        yield _sse("message_stop", {"type": "message_stop"})

    async def _fail_mid_stream(self, failure: str) -> AsyncIterator[str]:
        if failure == "stream_error":
            yield _sse("error", {"type": "error",
                                 "error": {"type": "overloaded_error", "message": "Overloaded"}})
        elif failure == "disconnect":
            raise ConnectionAbortedError("fake: dropping the connection mid-stream")
        elif failure == "stall":
            await asyncio.sleep(self.stall_seconds)
        # "truncate": nothing more; the response ends cleanly, without message_stop


# ----- building replies ------------------------------------------------------------------------------
def _search_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every search_result block in request order, top-level or inside tool results: the API numbers
    them this way for `search_result_index`."""
    found: list[dict[str, Any]] = []
    for msg in body.get("messages", []):
        for block in _blocks(msg.get("content")):
            if block.get("type") == "search_result":
                found.append(block)
            elif block.get("type") == "tool_result":
                found.extend(b for b in _blocks(block.get("content")) if b.get("type") == "search_result")
    return found


def _question(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return ""
    return " ".join(b.get("text", "") for b in _blocks(users[-1].get("content")) if b.get("type") == "text")


def _default_blocks(body: dict[str, Any], results: list[dict[str, Any]]) -> list[Block]:
    zh = bool(_CJK.search(_question(body)))
    if not results:
        return [("资料中没有找到相关信息。" if zh else "The search results do not cover this question.", None)]
    blocks: list[Block] = [("根据知识库资料：\n\n" if zh else "Based on the wiki:\n\n", None)]
    for i, result in enumerate(results[:2]):
        snippet = " ".join(_result_text(result).split())[:60]
        line = f"- {result.get('title', '')}：{snippet}\n" if zh else f"- {result.get('title', '')}: {snippet}\n"
        blocks.append((line, i))
    return blocks


def _message(body: dict[str, Any], blocks: Sequence[Block], results: list[dict[str, Any]],
             stop_reason: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for text, cited in blocks:
        block: dict[str, Any] = {"type": "text", "text": text}
        if cited is not None:
            block["citations"] = [_citation(results, cited)]
        content.append(block)
    out_tokens = max(1, sum(len(t) for t, _ in blocks) // 3)
    return {"id": f"msg_fake{next(_ids):06d}", "type": "message", "role": "assistant",
            "model": body.get("model", ""), "content": content, "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": max(1, len(json.dumps(body, ensure_ascii=False)) // 4),
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": out_tokens}}


def _default_tool_input(name: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    if name != "report_coverage":
        return {}
    if not results:
        return {"verdict": "none", "missing": "everything", "supporting_results": []}
    return {"verdict": "full", "missing": "", "supporting_results": [0]}


def _tool_message(body: dict[str, Any], name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    block = {"type": "tool_use", "id": f"toolu_fake{next(_ids):06d}", "name": name, "input": tool_input}
    return {"id": f"msg_fake{next(_ids):06d}", "type": "message", "role": "assistant",
            "model": body.get("model", ""), "content": [block], "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": max(1, len(json.dumps(body, ensure_ascii=False)) // 4),
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": max(1, len(json.dumps(tool_input)) // 3)}}


def _citation(results: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """A search_result_location; cited_text is the whole cited content block, as the API gives it."""
    result = results[index] if 0 <= index < len(results) else {}
    return {"type": "search_result_location", "source": result.get("source", ""),
            "title": result.get("title"), "cited_text": _result_text(result),
            "search_result_index": index, "start_block_index": 0, "end_block_index": 1}


def _result_text(result: dict[str, Any]) -> str:
    blocks = _blocks(result.get("content"))
    return str(blocks[0].get("text", "")) if blocks else ""


# ----- validation, like the real API's 400s ---------------------------------------------------------
def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for n, msg in enumerate(messages):
        if msg.get("role") not in ("user", "assistant"):
            return f"messages.{n}.role: Input should be 'user' or 'assistant'"
        content = msg.get("content")
        if isinstance(content, str) and not content.strip() or isinstance(content, list) and not content:
            return f"messages.{n}: all messages must have non-empty content"
        for block in _blocks(content):
            if block.get("type") == "text" and not str(block.get("text", "")).strip():
                return f"messages.{n}: text content blocks must contain non-whitespace text"
    results = _search_results(body)
    for r in results:
        if not isinstance(r.get("source"), str) or not isinstance(r.get("title"), str):
            return "search_result: source and title are required"
        texts = _blocks(r.get("content"))
        if not texts or any(b.get("type") != "text" or not str(b.get("text", "")).strip() for b in texts):
            return "search_result: content must be a non-empty list of non-empty text blocks"
    if len({bool((r.get("citations") or {}).get("enabled")) for r in results}) > 1:
        return "search_result: citations must be enabled or disabled for all search results"
    return _validate_tools(body)


def _validate_tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for n, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
                return f"tools.{n}.name: Field required"
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                return f"tools.{n}.input_schema: Input should be a JSON schema of type 'object'"
            names.add(tool["name"])
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        if choice["type"] in ("any", "tool") and not names:
            return "tool_choice: may only be specified while providing tools"
        if choice["type"] == "tool" and choice.get("name") not in names:
            return f"tool_choice: Tool '{choice.get('name')}' not found in tools"
    return None


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


# ----- wire helpers ----------------------------------------------------------------------------------
def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def _delta(index: int, delta: dict[str, Any]) -> str:
    return _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _error(status: int, err_type: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = f"req_fake{next(_ids):06d}"
    return JSONResponse({"type": "error", "error": {"type": err_type, "message": message},
                         "request_id": request_id}, status_code=status,
                        headers={"request-id": request_id, **(headers or {})})


async def _sleep_unless_gone(request: Request, seconds: float) -> bool:
    """Sleep, but give up early if the client hung up (so a timed-out test does not hold the server)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(0.05, left))
        if await request.is_disconnected():
            return False
    return True
