"""`wikibot gaps` as an operator runs it: a real subprocess over a real embedded index and log."""

from __future__ import annotations

import json

from retrieval.index import open_index
from retrieval.questions import QuestionLog
from tests.bot.app.test_cli import run


def test_gaps_json_groups_the_unanswered_and_hides_limited_chats(tmp_path, usem3_embedder):
    data = tmp_path / "data"
    index = open_index(data, usem3_embedder)
    log = QuestionLog(index.engine, usem3_embedder, "wikibot", lock=index.lock)
    asked = ["年假怎么申请？", "请年假的流程是什么？", "How do I book a meeting room?", "会议室怎么预订？"]
    for i, q in enumerate(asked):
        log.add(q, usem3_embedder.embed_query(q), platform="feishu", chat_id="oc_a", user_id=f"u{i}",
                covered=False, mode="extractive", page_ids=[], spaces=[])
    log.add("机密问题", usem3_embedder.embed_query("机密问题"), platform="feishu", chat_id="oc_secret",
            user_id="u9", covered=False, mode="extractive", page_ids=[], spaces=[])
    index.close()

    config = tmp_path / "wikibot.toml"
    config.write_text('[access.chat_spaces]\noc_secret = ["hr"]\n', encoding="utf-8")
    env = {"WIKIBOT_CONFIG": str(config)}
    out = run(["gaps", "--json"], data, **env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    groups = sorted(sorted(t["examples"]) for t in report["gap_topics"])
    assert groups == [sorted(asked[2:]), sorted(asked[:2])]
    assert report["totals"]["hidden"] == 1 and "机密问题" not in out.stdout
    assert all("asker_ids" not in t for t in report["gap_topics"])

    scoped = json.loads(run(["gaps", "--json", "--space", "hr"], data, **env).stdout)
    assert [t["examples"] for t in scoped["gap_topics"]] == [["机密问题"]]

    text = run(["gaps", "--since", "7d"], data, COLUMNS="200", **env)
    assert text.returncode == 0 and "年假" in text.stdout and "no page at all" in text.stdout
    assert run(["gaps", "--since", "lately"], data).returncode == 2
