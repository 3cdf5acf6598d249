"""The owners' page in the real `wikibot serve` process: a question asked over Feishu shows up as a gap."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.bot.app.serve_fixtures import *  # noqa: F403 - fixtures
from tests.bot.app.serve_fixtures import ServeProcess, wait_for_answer, wait_until
from tests.fakes.feishu import FakeFeishu

ADMIN = "serve-admin-token-abcdef123456"
QUESTION = "年假怎么申请？"


async def test_a_question_the_wiki_cannot_answer_reaches_the_owners_page(tmp_path: Path, feishu_wiki: FakeFeishu):
    proc = ServeProcess.feishu(tmp_path, "owners", feishu_wiki, WIKIBOT_ADMIN_TOKEN=ADMIN).start()
    try:
        proc.wait_ready()
        await wait_until(lambda: (proc.health().get("sync") or {}).get("last"), 60, interval=0.1)
        assert httpx.get(proc.url + "/admin/report.json").status_code == 401
        event = feishu_wiki.im.message_event(QUESTION)
        assert (await proc.deliver(event)).status_code == 200
        await wait_for_answer(feishu_wiki, event["event"]["message"]["message_id"])  # logged by now

        def gaps() -> list:
            r = httpx.get(proc.url + "/admin/report.json", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
            assert r.status_code == 200
            return [t for t in r.json()["gap_topics"] if QUESTION in t["examples"]]

        await wait_until(gaps, 10, interval=1.0)
        topic = gaps()[0]
        assert topic["reasons"] in ({"not_covered": 1}, {"weak": 1}) and topic["askers"] == 1
        assert topic["kind"] in ("new", "extend") and topic["nearest"]
        page = httpx.get(proc.url + "/admin", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and QUESTION not in page.text
        assert ADMIN not in proc.logs()
        assert proc.terminate() == 0
    finally:
        proc.kill()
