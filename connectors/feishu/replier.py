"""One reply card per question: sent at once, then updated as the answer streams in.

Feishu allows 5 updates per second per message and 5 messages per second per
group, shared by every bot there, so updates are coalesced: at most one every
`min_interval` seconds, always the newest text, and the final card is always
sent. Rate-limit answers are waited out by `FeishuApi`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from connectors.feishu.api import FeishuApi, FeishuApiError

log = logging.getLogger(__name__)


class CardStream:
    def __init__(self, api: FeishuApi, source_message_id: str, *, in_thread: bool,
                 min_interval: float = 0.5, context: str = "") -> None:
        self.api = api
        self.source_message_id = source_message_id
        self.in_thread = in_thread
        self.min_interval = min_interval
        self.context = context  # for log lines: event and chat
        self.card_message_id = ""
        self.updates_sent = 0
        self._pending: dict[str, Any] | None = None
        self._final = False
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[bool] | None = None
        self._last_sent = 0.0

    async def open(self, card: dict[str, Any]) -> bool:
        """Reply with the first card (the 'searching' card). False if Feishu refused it."""
        try:
            self.card_message_id = await self.api.reply_card(
                self.source_message_id, card, in_thread=self.in_thread, uuid=self._uuid())
        except FeishuApiError as exc:
            log.warning("feishu: could not reply to %s (%s): %s", self.source_message_id, self.context, exc)
            return False
        self._last_sent = time.monotonic()
        return True

    def update(self, card: dict[str, Any]) -> None:
        """Show this card soon; a newer card given before it is sent replaces it."""
        if self._final:
            return
        self._pending = card
        self._start_pump()
        self._wake.set()

    async def finish(self, card: dict[str, Any]) -> bool:
        """Send the final card (after any pending update), and wait until it is delivered."""
        if not self.card_message_id:  # the first reply failed (or was never sent): reply with the final card
            return await self.open(card)
        self._pending = card
        self._final = True
        self._start_pump()
        self._wake.set()
        assert self._pump is not None
        return await self._pump

    def _start_pump(self) -> None:
        if self._pump is None and self.card_message_id:
            self._pump = asyncio.create_task(self._run(), name=f"feishu-card-{self.card_message_id}")

    async def _run(self) -> bool:
        delivered = True
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = self._last_sent + self.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            card, self._pending = self._pending, None
            if card is not None:
                final = self._final and self._pending is None
                delivered = await self._send(card, final)
            if self._final and self._pending is None:
                return delivered

    async def _send(self, card: dict[str, Any], final: bool) -> bool:
        try:
            await self.api.update_card(self.card_message_id, card)
        except FeishuApiError as exc:
            if final:
                log.warning("feishu: final card update of %s failed (%s): %s",
                            self.card_message_id, self.context, exc)
            else:
                log.debug("feishu: intermediate card update failed: %s", exc)
            return False
        finally:
            self._last_sent = time.monotonic()
        self.updates_sent += 1
        return True

    def _uuid(self) -> str:
        """Feishu drops a second reply with the same uuid (within an hour): a retried reply posts once."""
        return f"wb-{self.source_message_id}"[:50]
