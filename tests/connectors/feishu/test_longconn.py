"""The long connection: the real lark_oapi.ws.Client, connected to the fake over pbbp2 frames."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.feishu.fixtures import *
from tests.connectors.feishu.fixtures import FeishuHarness, open_harness, wait_until


@pytest.fixture
async def feishu_ws(tmp_path, fake_feishu, embedder) -> AsyncIterator[FeishuHarness]:
    h = await open_harness(tmp_path, fake_feishu, embedder, mode="ws")
    try:
        await wait_until(fake_feishu.im.ws_connected.is_set, timeout=15)
        yield h
    finally:
        await h.close()


def _mid(event: dict) -> str:
    return event["event"]["message"]["message_id"]


async def test_group_mention_over_the_long_connection_is_answered(feishu_ws: FeishuHarness):
    event = feishu_ws.im.message_event("怎么发布服务？")
    ack = await feishu_ws.im.ws_deliver(event, parts=2)  # a payload split over two frames
    await wait_until(lambda: feishu_ws.im.replies_to(_mid(event)))
    await feishu_ws.settle()

    assert ack["code"] == 200
    [reply] = feishu_ws.im.replies_to(_mid(event))
    assert reply.reply_in_thread and "Argo CD" in reply.text()
    assert feishu_ws.adapter.health()["long_connection"] is True


async def test_the_same_event_over_both_transports_is_answered_once(feishu_ws: FeishuHarness):
    event = feishu_ws.im.message_event("VPN 连接失败怎么办？", chat_type="p2p", mention_bot=False)
    await feishu_ws.im.ws_deliver(event)
    assert (await feishu_ws.deliver(event)).status_code == 200  # also pushed to the HTTP callback
    await feishu_ws.im.ws_deliver(event)  # and redelivered on the connection
    await wait_until(lambda: feishu_ws.im.replies_to(_mid(event)))
    await feishu_ws.settle()

    assert len(feishu_ws.im.replies_to(_mid(event))) == 1


async def test_feedback_click_over_the_long_connection_gets_a_toast(feishu_ws: FeishuHarness):
    event = feishu_ws.im.message_event("VPN 连接失败怎么办？")
    await feishu_ws.im.ws_deliver(event)
    await wait_until(lambda: feishu_ws.im.replies_to(_mid(event)))
    await feishu_ws.settle()
    [reply] = feishu_ws.im.replies_to(_mid(event))
    value = next(el for el in reply.card["body"]["elements"] if el["tag"] == "column_set")[
        "columns"][0]["elements"][0]["behaviors"][0]["value"]

    answer = await feishu_ws.im.ws_deliver(feishu_ws.im.card_action_event(reply, value, user="ou_fan"))

    assert answer["code"] == 200
    assert answer["data"]["toast"]["type"] == "success"
    assert feishu_ws.bot.questions.get(value["qid"])["feedback"] == {"ou_fan": "up"}


async def test_stopping_closes_the_connection(tmp_path, fake_feishu, embedder):
    h = await open_harness(tmp_path, fake_feishu, embedder, mode="ws")
    await wait_until(fake_feishu.im.ws_connected.is_set, timeout=15)
    await h.close()

    await wait_until(lambda: not fake_feishu.im.ws_connected.is_set(), timeout=10)
    assert h.adapter.long_connection is not None and not h.adapter.long_connection.connected
