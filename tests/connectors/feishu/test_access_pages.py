"""`[access] mode = "asker"` below the space: a page whose own permissions are narrower than its space's.

The sync reads each page's sharing settings and, for a page that no longer inherits its space's
permissions (`lock_switch`), its permission members (the fake drive permission API); the page's chunks
carry those readers and a question in asker mode uses the page only for one of them. Real events, real
lark-oapi, the fake Feishu; the index-level test runs on both engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app.access import WikiAccess, install_access
from bot.app.factories import wiki_source
from connectors.feishu.wiki import FeishuWikiSource, WikiClient
from retrieval.embedders import Embedder
from retrieval.sync import sync_wiki
from tests.connectors.feishu.fixtures import *  # noqa: F403
from tests.connectors.feishu.fixtures import URL_BASE, FeishuHarness, open_harness
from tests.connectors.feishu.test_access import ALICE, BOB, CAROL, ask, directory, wiki_folder
from tests.connectors.feishu.wiki.fixtures import *  # noqa: F403
from tests.connectors.feishu.wiki.fixtures import SPACE, WikiFolder, run_sync
from tests.fakes.feishu import FakeFeishu

ORION = ("Orion 项目预算为三百万元，其中一百万元用于采购服务器，其余用于外包开发和市场推广，"
         "预算由财务总监审批。\n")
ORION_URL = URL_BASE + "orion"
QUESTION = "Orion 项目的预算是多少？"
RATES = {"sheets": 1000.0, "bitable": 1000.0, "drive": 1000.0, "permissions": 1000.0}


def feishu_source(fake: FakeFeishu, spaces: tuple[str, ...], *, page_permissions: bool) -> FeishuWikiSource:
    client = WikiClient(fake.app_id, fake.app_secret, fake.url, docs_requests_per_second=1000.0,
                        list_requests_per_minute=60000.0, api_requests_per_second=RATES)
    return FeishuWikiSource(client, spaces, URL_BASE, page_permissions=page_permissions)


async def open_bot(tmp_path: Path, fake: FakeFeishu, embedder: Embedder, *,
                   asker_mode: bool) -> tuple[FeishuHarness, WikiAccess | None, str]:
    """The bot with the directory of `test_access` and, in the public space `eng`, the Orion page."""
    root = wiki_folder(tmp_path / "wiki")
    fake.wiki.root = root  # type: ignore[attr-defined]
    directory(fake)
    orion = WikiFolder(root).page("eng", "orion", ORION, title="Orion 项目预算")
    extra = {"ACCESS_MODE": "asker"} if asker_mode else {}
    h = await open_harness(tmp_path, fake, embedder, extra=extra)
    access = install_access(h.settings, h.bot) if asker_mode else None
    return h, access, orion


def restrict(h: FeishuHarness, orion: str) -> None:
    """Orion: Alice by name, Bob through his department (a grant covers its sub-departments, not its
    parent: Carol, in the parent, is left out)."""
    h.fake.permissions.restrict(  # type: ignore[attr-defined]
        orion, [("openid", ALICE), ("opendepartmentid", "od-people-ops")])


async def sync(h: FeishuHarness, *, page_permissions: bool = True) -> Any:
    source = feishu_source(h.fake, ("eng",), page_permissions=page_permissions)
    report = await asyncio.to_thread(sync_wiki, h.bot.index, source, fetch_workers=1)
    assert report.ok, report.to_dict()
    return report


@pytest.fixture
async def asker(tmp_path: Path, fake_feishu: FakeFeishu,
                embedder: Embedder) -> AsyncIterator[tuple[FeishuHarness, str]]:
    h, access, orion = await open_bot(tmp_path, fake_feishu, embedder, asker_mode=True)
    assert access is not None
    try:
        yield h, orion
    finally:
        access.close()
        await h.close()


async def test_a_page_restricted_inside_a_public_space_is_answered_to_its_readers_only(asker):
    h, orion = asker
    restrict(h, orion)
    await sync(h)
    assert ORION_URL in await ask(h, QUESTION, ALICE)
    assert ORION_URL in await ask(h, QUESTION, BOB)
    assert ORION_URL not in await ask(h, QUESTION, CAROL)  # in the space (public), not among the readers
    assert ORION_URL not in await ask(h, QUESTION, "ou_stranger00000000000000000009")
    # a group sees the answer: only pages open to the whole space, even when every member could read it
    assert ORION_URL not in await ask(h, QUESTION, BOB, chat_type="group", chat_id="oc_mixed")


async def test_others_asked_hides_a_question_answered_from_a_page_the_asker_may_not_read(asker):
    h, orion = asker
    restrict(h, orion)
    await sync(h)
    assert ORION_URL in await ask(h, QUESTION, ALICE)
    assert QUESTION in await ask(h, "Orion 项目预算是多少钱？", BOB)  # Bob reads Orion: shown
    assert QUESTION not in await ask(h, "Orion 项目预算是多少钱？", CAROL)  # Carol does not


async def test_a_page_whose_permissions_cannot_be_read_is_answered_to_nobody(asker):
    h, orion = asker
    h.fake.permissions.fail[orion] = (403, 1063002, "permission denied")  # type: ignore[attr-defined]
    await sync(h)
    assert ORION_URL not in await ask(h, QUESTION, ALICE)
    assert ORION_URL not in await ask(h, QUESTION, BOB)
    del h.fake.permissions.fail[orion]  # type: ignore[attr-defined]
    report = await sync(h)  # read now: it inherits its (public) space's permissions
    assert report.chunks_embedded == 0
    assert ORION_URL in await ask(h, QUESTION, CAROL)


async def test_chat_mode_reads_no_page_permissions_and_answers_as_before(tmp_path: Path,
                                                                        fake_feishu: FakeFeishu,
                                                                        embedder: Embedder):
    h, _, orion = await open_bot(tmp_path, fake_feishu, embedder, asker_mode=False)
    try:
        h.fake.permissions.restrict(orion, [("openid", ALICE)])  # type: ignore[attr-defined]
        assert not wiki_source(h.settings).page_permissions  # the configured sync reads none in chat mode
        await sync(h, page_permissions=False)
        assert h.fake.count("/open-apis/drive/v1/permissions/") == 0
        assert ORION_URL in await ask(h, QUESTION, BOB)
    finally:
        await h.close()


def test_the_configured_sync_reads_page_permissions_in_asker_mode(tmp_path: Path, fake_feishu: FakeFeishu):
    from tests.connectors.feishu.fixtures import make_settings

    settings = make_settings(tmp_path / "data", fake_feishu, extra={"ACCESS_MODE": "asker"})
    assert wiki_source(settings).page_permissions


def test_a_permission_change_reaches_the_index_on_the_next_sync_without_re_embedding(fake, index, make_source,
                                                                                     wiki):
    doc = wiki.page(SPACE, "orion", ORION, title="Orion 项目预算")
    wiki.page(SPACE, "other", "运维值班表每周一更新。\n", title="值班")
    source = make_source(api_requests_per_second=RATES)
    source.page_permissions = True
    bob, alice = ["openid:" + BOB], ["openid:" + ALICE]

    def found(readers: list[str] | None) -> bool:
        return any(h.page_id == doc for h in index.search(QUESTION, k=3, readers=readers))

    first = run_sync(index, source)
    assert first.ok and found(bob) and found(alice) and found([])  # open to the space: anyone of it
    embedded = index.embedder.passages

    fake.permissions.restrict(doc, [("openid", ALICE)])
    report = run_sync(index, source)
    assert report.ok and report.chunks_embedded == 0 and index.embedder.passages == embedded
    assert found(alice) and not found(bob) and not found([])
    assert found(None)  # no reader filter (chat mode): every page
    assert index.page_states()[doc].readers == ("openid:" + ALICE,)

    fake.permissions.inherit(doc)
    report = run_sync(index, source)
    assert report.chunks_embedded == 0 and found(bob)
    calls = fake.count("/open-apis/drive/v1/permissions/")
    assert run_sync(index, source).unchanged == 2  # unchanged permissions: nothing read again but them
    assert fake.count("/open-apis/drive/v1/permissions/") - calls == 2  # one call per open page per sync
