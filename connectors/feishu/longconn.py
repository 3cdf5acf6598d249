"""Feishu's long connection (lark_oapi.ws.Client) in a thread of its own.

lark-oapi 1.7.5's ws client has only a blocking `start()` that drives a module
level event loop captured at import; inside an asyncio app that loop is the
app's own, already running one. So the client gets a thread and a fresh loop
(patched into the module before the client is built), and every event it
receives is handed, unchanged, to the same `dispatch` the HTTP callback uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.infra.metrics import ACK_SECONDS

log = logging.getLogger(__name__)
Dispatch = Callable[[dict[str, Any]], dict[str, Any]]  # blocking: returns the acknowledgement body


class LongConnection:
    def __init__(self, app_id: str, app_secret: str, domain: str, dispatch: Dispatch) -> None:
        self.app_id = app_id
        self._secret = app_secret
        self.domain = domain.rstrip("/")
        self._dispatch = dispatch
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._stopping = False
        self.events = 0

    @property
    def connected(self) -> bool:
        return self._client is not None and getattr(self._client, "_conn", None) is not None

    def start(self) -> None:
        logging.getLogger("Lark").addFilter(self._quiet_on_stop)
        self._thread = threading.Thread(target=self._run, name="feishu-long-connection", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and end the thread (blocking; call it via asyncio.to_thread)."""
        self._stopping = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(lambda: loop.create_task(self._shutdown()))
        if self._thread is not None:
            self._thread.join(timeout)
        logging.getLogger("Lark").removeFilter(self._quiet_on_stop)

    def _quiet_on_stop(self, record: logging.LogRecord) -> bool:
        """The SDK logs our own orderly close as an ERROR ("receive message loop exit"); drop that."""
        return not self._stopping

    def handler(self) -> Any:
        """The lark event dispatcher the ws client calls: messages and card clicks, as raw envelopes."""
        import lark_oapi as lark
        from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse

        def on_event(data: Any) -> None:
            self._handle(data)

        def on_card(data: Any) -> Any:
            return P2CardActionTriggerResponse(self._handle(data))

        return (lark.EventDispatcherHandler.builder("", "")
                .register_p2_customized_event("im.message.receive_v1", on_event)
                .register_p2_card_action_trigger(on_card)
                .build())

    def _handle(self, data: Any) -> dict[str, Any]:
        from lark_oapi.core.json import JSON

        started = time.perf_counter()
        envelope = json.loads(JSON.marshal(data))  # back to the wire JSON the webhook path sees
        self.events += 1
        result = self._dispatch(envelope)
        ACK_SECONDS.labels("feishu").observe(time.perf_counter() - started)
        return result

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            import lark_oapi as lark
            import lark_oapi.ws.client as ws_client

            ws_client.loop = loop  # the SDK drives this module-level loop; make it this thread's
            self._client = ws_client.Client(self.app_id, self._secret, event_handler=self.handler(),
                                            domain=self.domain, log_level=lark.LogLevel.WARNING)
            self._client.start()
        except RuntimeError as exc:
            if not self._stopping:
                log.error("feishu long connection stopped: %s", exc)
        except Exception as exc:
            log.error("feishu long connection failed: %s (check FEISHU_APP_ID/SECRET and that the app "
                      "uses long-connection event delivery)", exc)
        finally:
            _close(loop)
            self._client = None

    async def _shutdown(self) -> None:
        client = self._client
        if client is not None:
            client._auto_reconnect = False
            try:
                await client._disconnect()
            except Exception as exc:  # already closed
                log.debug("feishu long connection close: %s", exc)
        asyncio.get_running_loop().stop()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    except RuntimeError:
        pass
    finally:
        loop.close()
