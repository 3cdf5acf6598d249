"""One reply card per question: sent at once, then updated as the answer streams in.

Feishu allows 5 updates per second per message and 5 messages per second per
group, shared by every bot there, so updates are coalesced: at most one every
`min_interval` seconds, always the newest text, and the final card is always
sent. Rate-limit answers are waited out by `FeishuApi`.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.answering.conversation import Outcome
from bot.answering.streaming import CoalescedUpdates
from bot.answering.texts import Lang
from connectors.feishu import cards
from connectors.feishu.api import FeishuApi, FeishuApiError

log = logging.getLogger(__name__)


class CardStream:
    def __init__(self, api: FeishuApi, source_message_id: str, *, in_thread: bool,
                 min_interval: float = 0.5, context: str = "") -> None:
        self.api = api
        self.source_message_id = source_message_id
        self.in_thread = in_thread
        self.context = context  # for log lines: event and chat
        self.card_message_id = ""
        self._updates: CoalescedUpdates[dict[str, Any]] = CoalescedUpdates(
            self._send, min_interval=min_interval, name=f"feishu-card-{source_message_id}")

    @property
    def updates_sent(self) -> int:
        return self._updates.sent

    async def open(self, card: dict[str, Any]) -> bool:
        """Reply with the first card (the 'searching' card). False if Feishu refused it."""
        try:
            self.card_message_id = await self.api.reply_card(
                self.source_message_id, card, in_thread=self.in_thread, uuid=self._uuid())
        except FeishuApiError as exc:
            log.warning("feishu: could not reply to %s (%s): %s", self.source_message_id, self.context, exc)
            return False
        self._updates.mark_sent()
        return True

    def update(self, card: dict[str, Any]) -> None:
        """Show this card soon; a newer card given before it is sent replaces it."""
        if self.card_message_id:
            self._updates.update(card)

    async def finish(self, card: dict[str, Any]) -> bool:
        """Send the final card (after any pending update), and wait until it is delivered."""
        if not self.card_message_id:  # the first reply failed (or was never sent): reply with the final card
            return await self.open(card)
        return await self._updates.finish(card)

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
        return True

    def _uuid(self) -> str:
        """Feishu drops a second reply with the same uuid (within an hour): a retried reply posts once."""
        return f"wb-{self.source_message_id}"[:50]


class CardChannel:
    """The conversation's reply channel on Feishu: one card, rendered by `cards`, streamed by `CardStream`."""

    thread_id = ""  # Feishu threads a reply under the question's own message

    def __init__(self, stream: CardStream) -> None:
        self.stream = stream

    async def open(self, language: Lang) -> bool:
        return await self.stream.open(cards.searching_card(language))

    def partial(self, answer_so_far: str, language: Lang) -> None:
        self.stream.update(cards.streaming_card(answer_so_far, language))

    async def finish(self, outcome: Outcome) -> bool:
        return await self.stream.finish(cards.render(outcome))
