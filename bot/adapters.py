"""The contract between `wikibot serve` and a chat platform.

An adapter translates platform events into `Question`s for `WikiBot` and renders `Reply`s back; it holds
no answering logic. `serve` mounts its HTTP routes, starts it, asks it for health, and stops it on
shutdown. `serve` runs as two processes (bot/app/front.py): the adapters live in the worker; what a
platform gives the front — its front doors for HTTP requests and the connections it holds — is light
and only acknowledges, so that acknowledgements never wait on the worker's CPU work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.routing import BaseRoute


class Adapter(Protocol):
    name: str  # "feishu", "slack"

    def routes(self) -> list[BaseRoute]:
        """HTTP routes to mount (webhooks, card callbacks); empty when the adapter needs none."""
        ...

    async def start(self) -> None:
        """Connect (long connection / socket mode, unless the front holds it) and begin taking events."""
        ...

    async def stop(self) -> None:
        """Stop taking events and finish (bounded) what is in flight."""
        ...

    def health(self) -> dict[str, Any]:
        """{"ok": bool, ...details} for /healthz."""
        ...

    async def receive(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An event the front took off the platform's connection (`FrontConnection`); its acknowledgement
        payload (ignored when the front has acknowledged it already)."""
        ...


@dataclass(frozen=True)
class QuickAck:
    """The acknowledgement `serve`'s front process sends at once, before the worker has seen the request."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


# A platform's front door, for one path: given a request's headers (lower-case names) and body, the
# acknowledgement the platform expects when the request is certainly one the adapter would acknowledge that
# way (correctly signed, an event to answer); None for anything else — the front then passes it on and
# waits for the adapter's own response (challenges, card callbacks, refusals). Must not claim anything
# (nonces, event ids): the adapter does that when the worker gets the request.
QuickAckDoor = Callable[[Mapping[str, str], bytes], QuickAck | None]

# What a front connection does with an event: hand it over once it has acknowledged it itself (with the
# seconds the acknowledgement took), or ask the worker's adapter for the acknowledgement payload.
HandOver = Callable[[dict[str, Any], float], None]
AskWorker = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class FrontConnection(Protocol):
    """A connection the platform delivers events over (Feishu's long connection, Slack's Socket Mode),
    held by `serve`'s front: events that need only an empty acknowledgement are acknowledged at once and
    handed over; the rest wait for the worker's adapter (`Adapter.receive`) to say what to send back."""

    name: str  # the platform: events go to the adapter of that name

    async def start(self, hand_over: HandOver, ask: AskWorker) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]:
        """Merged into the adapter's /healthz entry: {"ok": bool, ...}."""
        ...


# The request scope key under which `serve`'s front process passes on how long it took to acknowledge a
# request it acknowledged itself: adapters report that as their acknowledgement time.
ACKED_BY_FRONT = "wikibot.acked_seconds"


def ack_seconds(scope: Mapping[str, Any], started: float, now: float) -> float:
    """The acknowledgement time of a request to report: the front's, when the front acknowledged it."""
    acked = scope.get(ACKED_BY_FRONT)
    return float(acked) if acked is not None else now - started
