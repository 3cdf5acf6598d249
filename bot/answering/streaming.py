"""Streaming an answer into one chat message without outrunning the platform's rate limits.

Every platform caps how often one message may be edited, and an answer arrives token by token,
so updates are coalesced: at most one every `min_interval` seconds, always the newest, and the
final one always sent (after any update still pending). The adapter supplies `send`, which edits
the message on its platform and says whether that worked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
Pending = T | Callable[[], T]  # a callable is rendered only when it is sent


class CoalescedUpdates(Generic[T]):
    def __init__(self, send: Callable[[T, bool], Awaitable[bool]], *, min_interval: float, name: str = "") -> None:
        self._send = send  # (payload, final) -> delivered
        self.min_interval = min_interval
        self.name = name
        self.sent = 0
        self._pending: Pending[T] | None = None
        self._final = False
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[bool] | None = None
        self._last_sent = 0.0

    def mark_sent(self) -> None:
        """The message was just posted (or edited) by other means: the interval counts from now."""
        self._last_sent = time.monotonic()

    def update(self, payload: Pending[T]) -> None:
        """Show this soon; a newer payload given before it is sent replaces it."""
        if self._final:
            return
        self._pending = payload
        self._kick()

    async def finish(self, payload: T) -> bool:
        """Send the final payload after any pending one; True if it was delivered."""
        self._pending, self._final = payload, True
        self._kick()
        assert self._pump is not None
        return await self._pump

    def _kick(self) -> None:
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name=self.name or None)
        self._wake.set()

    async def _run(self) -> bool:
        delivered = True
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = self._last_sent + self.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            pending, self._pending = self._pending, None
            if pending is not None:
                final = self._final and self._pending is None
                try:
                    delivered = await self._send(pending() if callable(pending) else pending, final)
                finally:
                    self._last_sent = time.monotonic()
                self.sent += delivered
            if self._final and self._pending is None:
                return delivered
