"""The gap report on a real index: questions in, topics out."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from bot.insights import ReportOptions, Scope, build_report, load_questions
from bot.insights.clustering import cluster, threshold_for
from tests.bot.insights.conftest import LIMITED_QUESTION, LIMITED_SPACE, NOW, chat_spaces
from tests.bot.insights.paraphrases import PARAPHRASES, unanswerable


def _report(gaps_data, **scope):
    _, index, log, _ = gaps_data
    return build_report(load_questions(log, chat_spaces), index, Scope(**scope), ReportOptions(topics=100),
                        now=NOW)


def test_paraphrases_of_a_missing_topic_land_together_and_distinct_topics_apart(gaps_data):
    _, _, _, ids = gaps_data
    report = _report(gaps_data)
    topic_of = {qid: t.id for t in report.gap_topics for qid in t.question_ids}
    missing = [k for k in ids if k.startswith("dev-")]
    assert len(missing) == len(unanswerable()) == 30
    for name in missing:
        assert len({topic_of[q] for q in ids[name]}) == 1, f"{name}: its paraphrases were split"
    assert len({topic_of[ids[name][0]] for name in missing}) == 30, "distinct missing topics were merged"
    sizes = {topic_of[ids[name][0]]: len(ids[name]) for name in PARAPHRASES}
    assert all(n == 3 for n in sizes.values())


def test_a_topic_shows_examples_askers_dates_and_nearest_pages(gaps_data):
    _, _, _, ids = gaps_data
    report = _report(gaps_data)
    by_id = {t.id: t for t in report.gap_topics}
    topic = next(t for t in report.gap_topics if ids["dev-u006"][0] in t.question_ids)
    assert topic.questions == 3 and topic.askers == 3 and topic.first < topic.last
    assert topic.examples[0] in [unanswerable()["dev-u006"], *PARAPHRASES["dev-u006"]]
    assert topic.reasons == {"not_covered": 3}
    assert topic.kind == "new" and topic.nearest  # the nearest pages are offered, none close
    near_miss = next(t for t in by_id.values() if ids["near-miss"][0] in t.question_ids)
    assert set(near_miss.question_ids) == set(ids["near-miss"]) and near_miss.reasons == {"weak": 2}
    assert near_miss.kind == "extend"
    gpu = next(p for p in near_miss.nearest if p.page_id == "gpu-cluster-rules")
    assert gpu.url and gpu.title == "GPU 集群使用规范" and gpu.space == "team-ops"
    assert not topic.asker_ids and "asker_ids" not in topic.to_json()  # not shown unless configured


def test_pages_cited_never_cited_and_downvoted(gaps_data):
    report = _report(gaps_data)
    cited = {s.page.page_id: s for s in report.cited_pages}
    assert cited["gpu-cluster-rules"].cited == 4 and cited["gpu-cluster-rules"].ups == 1  # incl. the near miss
    assert [s.page.page_id for s in report.downvoted_pages] == ["lora-qlora", "serving-llms-with-vllm"]
    never = {p.page_id for p in report.never_cited}
    assert "rag-architecture" in never and "lora-qlora" not in never
    assert report.totals["pages"] == 28 and len(never) == 28 - 3
    downvoted_topics = [t for t in report.gap_topics if t.reasons.get("down")]
    assert len(downvoted_topics) == 2  # a 👎 makes an answered question a gap


def test_coverage_and_feedback_over_time(gaps_data):
    report = _report(gaps_data)
    assert sum(d["questions"] for d in report.daily) == report.totals["questions"] == 30 + 20 + 4 + 2
    assert sum(w["up"] for w in report.weekly) == 1 and sum(w["down"] for w in report.weekly) == 2
    assert sum(w["covered"] for w in report.weekly) == 6
    assert {p for d in report.daily for p in d["platforms"]} == {"feishu", "slack"}
    assert all(0.0 <= w["covered_share"] <= 1.0 for w in report.weekly)


def test_questions_from_a_space_limited_chat_show_only_under_its_spaces(gaps_data):
    everywhere = _report(gaps_data)
    assert LIMITED_QUESTION not in str(everywhere.to_json())
    assert everywhere.totals["hidden"] == 1 and everywhere.hidden_spaces == [LIMITED_SPACE]
    limited = _report(gaps_data, space=LIMITED_SPACE)
    assert [t.examples for t in limited.gap_topics] == [(LIMITED_QUESTION,)]
    other = _report(gaps_data, space="team-ops")
    assert LIMITED_QUESTION not in str(other.to_json())
    assert {p.space for p in other.never_cited} == {"team-ops"}


def test_since_limits_the_window(gaps_data):
    since = NOW - timedelta(days=2, hours=1)
    recent = _report(gaps_data, since=since)
    assert 0 < recent.totals["questions"] < _report(gaps_data).totals["questions"]
    assert all(t.first >= since for t in recent.gap_topics)


def test_big_logs_cluster_through_leaders_with_the_same_topics(usem3_embedder):
    import numpy as np

    from tests.bot.insights.paraphrases import labelled_questions

    qs = labelled_questions()
    base = np.stack([usem3_embedder.embed_query(q) for _, q in qs])
    rng = np.random.default_rng(0)
    reps = 4000 // len(base) + 1
    big = np.repeat(base, reps, axis=0) + rng.normal(0, 0.01, (len(base) * reps, base.shape[1]))
    labels = cluster(big, threshold_for("usem3"))
    truth = np.repeat(np.array([t for t, _ in qs]), reps)
    groups = defaultdict(set)
    for t, label in zip(truth, labels):
        groups[t].add(int(label))
    assert all(len(v) == 1 for v in groups.values())
    assert len({next(iter(v)) for v in groups.values()}) == 30


def test_askers_ids_are_shown_only_when_configured(gaps_data):
    _, index, log, ids = gaps_data
    questions = load_questions(log, chat_spaces)
    shown = build_report(questions, index, Scope(), ReportOptions(topics=100, show_askers=True), now=NOW)
    topic = next(t for t in shown.gap_topics if ids["near-miss"][0] in t.question_ids)
    assert topic.asker_ids == ("slack:w0", "slack:w1") and topic.to_json()["asker_ids"] == ["slack:w0", "slack:w1"]
    hidden = build_report(questions, index, Scope(), ReportOptions(topics=100), now=NOW)
    assert all(not t.asker_ids for t in hidden.gap_topics) and "slack:w0" not in str(hidden.to_json())
