"""The HTTP callback's checks: challenge, token, decryption, signature, freshness, replay."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from bot.infra.metrics import EVENTS_REJECTED
from connectors.feishu.webhook import Rejected, WebhookChecks, decrypt, signature
from tests.connectors.feishu.fixtures import *
from tests.connectors.feishu.fixtures import ENCRYPT_KEY, TOKEN, FeishuHarness, open_harness
from tests.fakes.feishu.im import encrypt, sign


def _rejected(reason: str) -> float:
    return EVENTS_REJECTED.labels("feishu", reason)._value.get()


def test_decrypt_matches_the_documented_test_vector():
    assert decrypt("P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=", "test key") == b"hello world"


def test_decrypt_matches_a_fixed_iv_vector_and_the_fake_encrypts_the_same_way():
    vector = ("AAECAwQFBgcICQoLDA0OD6alpwIsMFbSsWTHppjb1mEu9cNFSciswsSKozZRT/yJ0pJ9Srb8maLSthv6j6V8a8pp+WlI0s2jg"
              "fN5z71C4ok=")
    plaintext = b'{"challenge":"abc","token":"vt","type":"url_verification"}'
    assert decrypt(vector, "test key") == plaintext
    assert encrypt(plaintext, "test key", iv=bytes(range(16))) == vector


def test_signature_matches_the_vector():
    body = b'{"encrypt":"P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="}'
    expected = "69c61fa99760d59824d588297c0036194769fb54331682c9cbcd93e85b9a8aad"
    assert signature("1700000000", "abc123", "test key", body) == expected
    assert sign("1700000000", "abc123", "test key", body) == expected


def test_stale_timestamp_is_checked_on_the_delivery_header_not_the_event_time():
    seen: set[str] = set()
    checks = WebhookChecks(TOKEN, ENCRYPT_KEY, claim_nonce=lambda k, ttl: not (k in seen or seen.add(k)),
                           clock=lambda: 1_700_000_000.0)
    old_event = {"schema": "2.0", "header": {"event_id": "e", "event_type": "im.message.receive_v1",
                                             "create_time": "1699970000000", "token": TOKEN}, "event": {}}
    body = json.dumps({"encrypt": encrypt(json.dumps(old_event), ENCRYPT_KEY)}).encode()

    def headers(ts: str, nonce: str) -> dict[str, str]:
        return {"x-lark-request-timestamp": ts, "x-lark-request-nonce": nonce,
                "x-lark-signature": sign(ts, nonce, ENCRYPT_KEY, body)}

    # a redelivery 8 hours after the event, freshly signed: accepted
    assert checks.open(headers("1699999990", "n1"), body)["header"]["event_id"] == "e"
    with pytest.raises(Rejected) as stale:
        checks.open(headers("1699999600", "n2"), body)  # signed 400 s ago
    assert stale.value.reason == "stale"
    with pytest.raises(Rejected) as future:
        checks.open(headers("1700000400", "n3"), body)
    assert future.value.reason == "stale"


async def test_url_verification_challenge_is_answered_when_encrypted(feishu: FeishuHarness):
    challenge = {"challenge": "c-123", "token": TOKEN, "type": "url_verification"}
    resp = await feishu.deliver(challenge)  # encrypted and signed, as Feishu does with an encrypt key

    assert resp.status_code == 200 and resp.json() == {"challenge": "c-123"}


async def test_url_verification_challenge_is_answered_without_signature_headers(feishu: FeishuHarness):
    body = json.dumps({"encrypt": encrypt(json.dumps({"challenge": "c-9", "token": TOKEN,
                                                      "type": "url_verification"}), ENCRYPT_KEY)})
    async with httpx.AsyncClient() as client:
        resp = await client.post(feishu.url + "/feishu/card", content=body)

    assert resp.json() == {"challenge": "c-9"}


async def test_challenge_with_a_wrong_token_is_refused(feishu: FeishuHarness):
    resp = await feishu.deliver({"challenge": "c-1", "token": "not-ours", "type": "url_verification"})

    assert resp.status_code == 401 and "challenge" not in resp.json()


async def test_plaintext_challenge_without_an_encrypt_key(tmp_path, fake_feishu, embedder):
    h = await open_harness(tmp_path, fake_feishu, embedder, encrypt_key="")
    try:
        ok = await h.deliver({"challenge": "plain", "token": TOKEN, "type": "url_verification"})
        event = h.im.message_event("VPN 连接失败怎么办？")
        reply = await h.ask(event)
    finally:
        await h.close()
    assert ok.json() == {"challenge": "plain"}
    assert "WireGuard" in reply.text()


async def test_bad_signature_is_rejected_with_a_log_line_and_no_answer(feishu: FeishuHarness, caplog):
    event = feishu.im.message_event("VPN 连接失败怎么办？")
    before = _rejected("bad_signature")
    with caplog.at_level(logging.WARNING, logger="connectors.feishu.adapter"):
        resp = await feishu.deliver(event, signature="0" * 64)
    await feishu.settle()

    assert resp.status_code == 401
    assert feishu.im.sent == [] and feishu.fake.count("/reply") == 0
    assert _rejected("bad_signature") - before == 1
    assert any("rejected: bad_signature" in r.getMessage() for r in caplog.records)
    # the same event, correctly signed, is still answered: a forged copy burned nothing
    assert (await feishu.deliver(event)).status_code == 200
    await feishu.settle()
    assert len(feishu.im.sent) == 1


async def test_stale_timestamp_is_rejected(feishu: FeishuHarness, caplog):
    event = feishu.im.message_event("VPN 连接失败怎么办？")
    with caplog.at_level(logging.WARNING, logger="connectors.feishu.adapter"):
        resp = await feishu.deliver(event, timestamp=str(int(time.time()) - 600))
    await feishu.settle()

    assert resp.status_code == 401 and resp.json() == {"msg": "stale"}
    assert feishu.im.sent == []
    assert any("rejected: stale" in r.getMessage() for r in caplog.records)


async def test_replayed_request_is_rejected(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？")
    first = await feishu.deliver(event, nonce="nonce-1")
    replay = await feishu.deliver(event, nonce="nonce-1")  # the captured request, sent again
    await feishu.settle()

    assert first.status_code == 200
    assert replay.status_code == 401 and replay.json() == {"msg": "replayed"}
    assert len(feishu.im.sent) == 1


async def test_wrong_verification_token_is_rejected(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？", token="someone-elses-token")
    before = _rejected("bad_token")
    resp = await feishu.deliver(event)
    await feishu.settle()

    assert resp.status_code == 401 and feishu.im.sent == []
    assert _rejected("bad_token") - before == 1


async def test_plaintext_body_is_rejected_when_an_encrypt_key_is_set(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？")
    resp = await feishu.deliver(event, encrypt_key="")

    assert resp.status_code == 401 and resp.json() == {"msg": "not_encrypted"}


async def test_body_encrypted_with_another_key_is_rejected(feishu: FeishuHarness):
    event = feishu.im.message_event("VPN 连接失败怎么办？")
    body = json.dumps({"encrypt": encrypt(json.dumps(event), "another key")}).encode()
    ts, nonce = str(int(time.time())), "n-other"
    headers = {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce,
               "X-Lark-Signature": sign(ts, nonce, ENCRYPT_KEY, body)}
    async with httpx.AsyncClient() as client:
        resp = await client.post(feishu.url + "/feishu/events", content=body, headers=headers)

    assert resp.status_code == 400 and resp.json() == {"msg": "undecryptable"}


async def test_garbage_body_is_a_clean_400(feishu: FeishuHarness):
    async with httpx.AsyncClient() as client:
        resp = await client.post(feishu.url + "/feishu/events", content=b"\xff not json")

    assert resp.status_code == 400 and resp.json() == {"msg": "malformed"}
