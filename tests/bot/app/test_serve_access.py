"""`wikibot serve` with `ACCESS_MODE=asker`, as a real process: the composition root wires Feishu access in.

The synced space is private and shared with one user: that user is answered from it, someone else is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.app.serve_fixtures import *  # noqa: F403 - fixtures
from tests.bot.app.serve_fixtures import ServeProcess, wait_for_answer, wait_until
from tests.connectors.feishu.wiki.fixtures import SPACE
from tests.fakes.feishu import FakeFeishu

MEMBER, STRANGER = "ou_member000000000000000000000001", "ou_stranger0000000000000000000002"


@pytest.fixture
def serve_asker(tmp_path: Path, feishu_wiki: FakeFeishu) -> Iterator[ServeProcess]:
    d = feishu_wiki.directory  # type: ignore[attr-defined]
    d.add_user(MEMBER, "Member", email="member@example.com")
    d.add_user(STRANGER, "Stranger", email="stranger@example.com")
    d.share(SPACE, "openid", MEMBER)
    proc = ServeProcess.feishu(tmp_path, "asker", feishu_wiki, ACCESS_MODE="asker").start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.kill()


async def test_serve_answers_each_asker_from_what_they_may_read(serve_asker: ServeProcess,
                                                                feishu_wiki: FakeFeishu):
    await wait_until(lambda: (serve_asker.health().get("sync") or {}).get("last"), 60, interval=0.1)
    assert feishu_wiki.count(f"/open-apis/wiki/v2/spaces/{SPACE}/members") >= 1  # read at start-up

    async def ask(user: str) -> str:
        event = feishu_wiki.im.message_event("VPN 连接失败怎么办？", user=user, chat_type="p2p",  # type: ignore[attr-defined]
                                              mention_bot=False, chat_id=f"oc_dm_{user[3:10]}")
        assert (await serve_asker.deliver(event)).status_code == 200
        replies = await wait_for_answer(feishu_wiki, event["event"]["message"]["message_id"])
        return "\n".join(r.text() for r in replies)

    assert "WireGuard" in await ask(MEMBER)
    assert "WireGuard" not in await ask(STRANGER)
