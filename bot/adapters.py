"""The contract between `wikibot serve` and a chat platform adapter.

An adapter translates platform events into `Question`s for `WikiBot` and renders
`Reply`s back; it holds no answering logic. `serve` mounts its HTTP routes,
starts it, asks it for health, and stops it on shutdown.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.routing import BaseRoute


class Adapter(Protocol):
    name: str  # "feishu", "slack"

    def routes(self) -> list[BaseRoute]:
        """HTTP routes to mount (webhooks, card callbacks); empty when the adapter needs none."""
        ...

    async def start(self) -> None:
        """Connect (long connection / socket mode) and begin taking events."""
        ...

    async def stop(self) -> None:
        """Stop taking events and finish (bounded) what is in flight."""
        ...

    def health(self) -> dict[str, Any]:
        """{"ok": bool, ...details} for /healthz."""
        ...
