"""Feishu in `serve`'s front process: what can be acknowledged before the worker sees it.

- Webhook mode (`front_doors`, a bot.adapters.QuickAckDoor): a message event that passes every check the
  adapter makes (signature and timestamp, decryption, the verification token) is acknowledged with the
  adapter's own body at once; the adapter then receives it, checks it again and claims its nonce and ids,
  exactly as if it had come straight to it. Anything else — the URL challenge, card actions, other event
  types, anything refused — goes through to the adapter, which answers it itself.
- Long-connection mode (`front_connections`): the front holds the connection. A message event is
  acknowledged at once and handed to the adapter (`FeishuAdapter.receive`), which claims its ids; a card
  click waits for the adapter's toast.

Nothing heavy is imported until a long connection starts (lark-oapi, in its own thread).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from bot.adapters import AskWorker, FrontConnection, HandOver, QuickAck, QuickAckDoor
from connectors.feishu.events import ACK, MESSAGE_EVENT, event_type
from connectors.feishu.settings import FeishuSection
from connectors.feishu.webhook import Rejected, WebhookChecks

_ACK_BODY = json.dumps(ACK).encode()


def front_doors(settings: FeishuSection) -> dict[str, QuickAckDoor]:
    f = settings
    # no nonce is claimed here: the adapter claims it when the worker checks the same request
    checks = WebhookChecks(f.verification_token.get_secret_value(), f.encrypt_key.get_secret_value(),
                           claim_nonce=lambda key, ttl: True)
    if f.event_mode != "webhook" or not checks.configured:
        return {}

    def message_events(headers: Mapping[str, str], body: bytes) -> QuickAck | None:
        try:
            envelope = checks.open(headers, body)
        except Rejected:
            return None  # the adapter refuses it, counts it and logs why
        if event_type(envelope) != MESSAGE_EVENT:
            return None
        return QuickAck(200, _ACK_BODY, "application/json")

    return {"/feishu/events": message_events}


def front_connections(settings: FeishuSection) -> list[FrontConnection]:
    return [LongConnectionFront(settings)] if settings.event_mode == "ws" else []


class LongConnectionFront:
    """Feishu's long connection, held by the front (connectors/feishu/longconn.py in a thread of its own)."""

    name = "feishu"

    def __init__(self, settings: FeishuSection, ask_seconds: float = 2.8) -> None:
        self.settings = settings
        self.ask_seconds = ask_seconds  # Feishu waits 3 s for the answer to a pushed event
        self.connection: Any = None

    async def start(self, hand_over: HandOver, ask: AskWorker) -> None:
        from connectors.feishu.longconn import LongConnection

        loop = asyncio.get_running_loop()

        def dispatch(envelope: dict[str, Any]) -> dict[str, Any]:  # on the connection's thread
            started = time.perf_counter()
            if event_type(envelope) == MESSAGE_EVENT:
                loop.call_soon_threadsafe(hand_over, envelope, time.perf_counter() - started)
                return dict(ACK)
            return asyncio.run_coroutine_threadsafe(ask(envelope), loop).result(self.ask_seconds)

        f = self.settings
        self.connection = LongConnection(f.app_id, f.app_secret.get_secret_value(), f.domain, dispatch)
        self.connection.start()

    async def stop(self) -> None:
        if self.connection is not None:
            await asyncio.to_thread(self.connection.stop)

    def health(self) -> dict[str, Any]:
        connected = bool(self.connection is not None and self.connection.connected)
        return {"ok": connected, "long_connection": connected}
