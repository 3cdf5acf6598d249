"""`[access] mode = "asker"` on Feishu, end to end: real events, real lark-oapi, the fake Feishu directory.

Three spaces: `eng` public to the tenant, `hr` shared with the department `od-people` (Bob sits in its
sub-department), `nda` shared with Alice alone. Alice reads eng + nda, Bob eng + hr.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.answering.texts import text
from bot.app.access import WikiAccess, install_access
from bot.infra.metrics import ACCESS_FALLBACKS
from retrieval.embedders import Embedder
from retrieval.pages import Page
from tests.connectors.feishu.fixtures import *  # noqa: F403
from tests.connectors.feishu.fixtures import URL_BASE, FeishuHarness, open_harness
from tests.fakes.feishu import FakeFeishu

ALICE = "ou_alice000000000000000000000001"
BOB = "ou_bob00000000000000000000000002"
CAROL = "ou_carol0000000000000000000000003"
FALCON = Page("falcon", "Falcon 项目发布计划", "# Falcon 项目发布计划\n\nFalcon 项目计划在十一月二十日"
              "对外发布，发布前需要完成安全评审和法务审批，对外口径由市场部统一。", space="nda",
              url=URL_BASE + "wikcnFalcon")
SALARY_URL, FALCON_URL, VPN_URL = URL_BASE + "wikcnSalary", URL_BASE + "wikcnFalcon", URL_BASE + "wikcnVPN"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wiki_folder(root: Path) -> Path:
    for space, visibility in (("eng", "public"), ("hr", "private"), ("nda", "private")):
        (root / space).mkdir(parents=True)
        (root / space / "_space.json").write_text(json.dumps({"name": space, "visibility": visibility}))
    return root


def directory(fake: FakeFeishu) -> None:
    d = fake.directory  # type: ignore[attr-defined]
    d.add_user(ALICE, "Alice", email="alice@example.com", departments=["od-sales"])
    d.add_user(BOB, "Bob", email="bob@example.com", departments=["od-people-ops"])
    d.add_user(CAROL, "Carol", email="carol@example.com", departments=["od-people"])
    d.parents.update({"od-people-ops": "od-people", "od-people": "0", "od-sales": "0"})
    d.share("eng", "openid", ALICE, role="admin")  # a public space lists its admins only
    d.share("hr", "opendepartmentid", "od-people")
    d.share("nda", "openid", ALICE)
    d.chats["oc_mixed"] = [ALICE, BOB]
    d.chats["oc_people"] = [BOB, CAROL]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def asker(tmp_path: Path, fake_feishu: FakeFeishu, embedder: Embedder,
                clock: Clock) -> AsyncIterator[tuple[FeishuHarness, WikiAccess]]:
    fake_feishu.wiki.root = wiki_folder(tmp_path / "wiki")  # type: ignore[attr-defined]
    directory(fake_feishu)
    harness = await open_harness(tmp_path, fake_feishu, embedder, extra={"ACCESS_MODE": "asker"})
    harness.bot.index.upsert_page(FALCON)
    harness.bot.access.clock = clock
    access = install_access(harness.settings, harness.bot, clock=clock)
    assert access is not None
    try:
        yield harness, access
    finally:
        access.close()
        await harness.close()


async def ask(h: FeishuHarness, question: str, user: str, *, chat_type: str = "p2p",
              chat_id: str = "") -> str:
    event = h.im.message_event(question, user=user, chat_type=chat_type, mention_bot=chat_type != "p2p",
                               chat_id=chat_id or f"oc_dm_{user[3:8]}")
    return (await h.ask(event)).text()


async def test_each_asker_gets_answers_only_from_the_spaces_they_may_read(asker):
    h, _ = asker
    assert SALARY_URL in await ask(h, "工资每月几号发放？", BOB)  # hr: Bob's department's parent has it
    assert SALARY_URL not in await ask(h, "工资每月几号发放？", ALICE)
    assert FALCON_URL in await ask(h, "Falcon 项目什么时候发布？", ALICE)  # nda: shared with Alice
    assert FALCON_URL not in await ask(h, "Falcon 项目什么时候发布？", BOB)
    assert VPN_URL in await ask(h, "VPN 连接失败怎么办？", ALICE)  # eng: public to the tenant
    assert VPN_URL in await ask(h, "VPN 连接失败怎么办？", BOB)


async def test_an_unknown_user_reads_only_what_everyone_may_read(asker):
    h, _ = asker
    assert SALARY_URL not in await ask(h, "工资每月几号发放？", "ou_stranger00000000000000000009")
    assert VPN_URL in await ask(h, "VPN 连接失败怎么办？", "ou_stranger00000000000000000009")


async def test_a_group_answer_uses_only_spaces_every_member_may_read(asker):
    h, _ = asker
    assert SALARY_URL not in await ask(h, "工资每月几号发放？", BOB, chat_type="group", chat_id="oc_mixed")
    assert SALARY_URL in await ask(h, "工资每月几号发放？", BOB, chat_type="group", chat_id="oc_people")
    assert h.fake.count("/open-apis/im/v1/chats/oc_people/members") == 1


async def test_others_asked_shows_only_questions_the_asker_could_read(asker):
    h, _ = asker
    await ask(h, "工资每月几号发放？", BOB)
    carol = await ask(h, "工资是每个月几号发？", CAROL)
    alice = await ask(h, "工资是每个月几号发？", ALICE)
    assert "工资每月几号发放" in carol  # Carol reads hr: Bob's question is shown to her
    assert "工资每月几号发放" not in alice


async def test_feishu_failing_fails_closed_to_what_everyone_may_read(asker):
    h, _ = asker
    h.fake.inject("/open-apis/contact/v3/users/", times=50, status=400, code=99991672,
                  msg="scope not granted")
    before = ACCESS_FALLBACKS.labels("feishu")._value.get()
    bob = await ask(h, "工资每月几号发放？", BOB)
    assert SALARY_URL not in bob
    assert ACCESS_FALLBACKS.labels("feishu")._value.get() == before + 1  # operators see it in /metrics
    assert VPN_URL in await ask(h, "VPN 连接失败怎么办？", BOB)  # the public space still answers


async def test_without_any_access_information_the_bot_says_so(tmp_path: Path, fake_feishu: FakeFeishu,
                                                               embedder: Embedder):
    fake_feishu.wiki.root = wiki_folder(tmp_path / "wiki")  # type: ignore[attr-defined]
    directory(fake_feishu)
    fake_feishu.inject("/open-apis/wiki/v2/spaces", times=100, status=400, code=99991672,
                       msg="scope not granted")
    h = await open_harness(tmp_path, fake_feishu, embedder, extra={"ACCESS_MODE": "asker"})
    access = install_access(h.settings, h.bot)
    assert access is not None
    try:
        await access.warm_up()  # fails, logged; not fatal
        reply = await ask(h, "VPN 连接失败怎么办？", ALICE)
        assert text("access_unknown", "zh") in reply
        assert VPN_URL not in reply
    finally:
        access.close()
        await h.close()


async def test_a_permission_change_is_seen_after_the_cache_expires_or_a_sync(asker, clock: Clock):
    h, access = asker
    assert SALARY_URL in await ask(h, "工资每月几号发放？", BOB)
    h.fake.directory.unshare("hr", "od-people")  # type: ignore[attr-defined]
    calls = len(h.fake.requests)
    assert SALARY_URL in await ask(h, "工资每月几号发放？", BOB)  # cached: no Feishu call on a warm cache
    assert len([r for r in h.fake.requests[calls:] if "/im/v1/messages" not in r[1]]) == 0
    clock.now += h.settings.access.cache_seconds + 1  # both the asker's cache and the space readers expire
    await ask(h, "工资每月几号发放？", BOB)  # answered at once from the old readers; a re-read starts
    await access.feishu.settled()
    assert SALARY_URL not in await ask(h, "工资每月几号发放？", BOB)

    h.fake.directory.share("hr", "openid", BOB)  # type: ignore[attr-defined]
    h.bot.access.invalidate()  # what a finished sync does: the readers are re-read at once
    await access.feishu.settled()
    assert SALARY_URL in await ask(h, "工资每月几号发放？", BOB)


async def test_a_sync_re_reads_the_space_readers_in_the_background(asker):
    h, access = asker
    await access.warm_up()
    calls = h.fake.count("/members", "GET")
    access.feishu.invalidate()
    await access.feishu.settled()
    assert h.fake.count("/members", "GET") > calls
    h.fake.inject("/open-apis/wiki/v2/spaces", times=100, status=400, code=99991672, msg="scope not granted")
    access.feishu.invalidate()  # the re-read fails: the last readers are kept, questions are not held up
    assert SALARY_URL in await ask(h, "工资每月几号发放？", BOB)


async def test_a_space_whose_members_cannot_be_listed_is_read_by_nobody_else(asker):
    h, _ = asker
    h.fake.inject("/open-apis/wiki/v2/spaces/hr/members", times=100, status=400, code=131006,
                  msg="permission denied: wiki space permission denied")
    h.fake.directory.share("nda", "openchat", "oc_gone")  # type: ignore[attr-defined]  # the bot is not in it
    assert SALARY_URL not in await ask(h, "工资每月几号发放？", BOB)
    assert FALCON_URL in await ask(h, "Falcon 项目什么时候发布？", ALICE)  # the rest of the readers stand
