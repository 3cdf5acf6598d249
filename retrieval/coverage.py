"""Does the wiki cover this question? Signals of the best passages, combined by a fitted model.

Two cosine thresholds tuned on one set did not carry over to other wikis and questions: near-miss
questions (the topic is in the wiki, the answer is not) look like answerable ones to the embedder.
So the decision reads more signals — how far the best passage stands out from the rest, how much of
the question's *weight* (rare terms, numbers, codes) the passage and its best sentence hold, and the
heaviest question term the passage lacks — and combines them with a logistic regression fitted per
embedder (`coverage_model.json`, fitted by `bench/coverage_bench.py` on eval-dev; judged on held-out
sets, see README); a cosine above the old "strong" threshold still suffices on its own. An embedder
without a fitted model falls back to the cosine thresholds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval.embedders import per_embedder
from retrieval.index import Hit
from retrieval.relevance import Thresholds, is_covered, thresholds_for
from retrieval.termweights import (MAX_WEIGHT, bigrams, passage_terms, query_terms, sentences,
                                   weighted_coverage)

MODEL_FILE = Path(__file__).with_name("coverage_model.json")
CONSIDER = 3  # passages whose signals count
FEATURES = ("dense", "dense_gap", "lexical", "weighted", "bigram", "key", "sentence", "missing")


@dataclass(frozen=True)
class Signals:
    """Per question: each signal is the best value among the top `CONSIDER` passages."""

    dense: float  # cosine of question and passage
    dense_gap: float  # best cosine minus the median cosine of the candidates below the top 3
    lexical: float  # share of question terms in the passage (count)
    weighted: float  # share of question term weight in the passage (title and headings included)
    bigram: float  # share of the question's Chinese character bigrams (English: = weighted)
    key: float  # share of key terms (numbers, codes, rare words) present; 1 when the question has none
    sentence: float  # weighted coverage of the single best sentence
    missing: float  # weight of the heaviest question term absent from the best passage, / MAX_WEIGHT

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, f) for f in FEATURES], dtype=np.float64)


@dataclass(frozen=True)
class Decision:
    covered: bool
    probability: float  # the model's P(answerable); 1.0/0.0 for the threshold fallback
    signals: Signals | None


def signals(query: str, hits: Sequence[Hit], consider: int = CONSIDER) -> Signals:
    """The coverage signals of a question and its ranked hits (with `dense_score` filled in)."""
    if not hits:
        return Signals(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    terms = query_terms(query)
    qbigrams = bigrams(query.lower())
    top = hits[:consider]
    dense = max(h.dense_score for h in top)
    rest = sorted(h.dense_score for h in hits[consider:6]) or [min(h.dense_score for h in top)]
    gap = dense - rest[len(rest) // 2]
    best_w, best_b, best_k, best_s, best_missing = 0.0, 0.0, 0.0, 0.0, 1.0
    keys = [t for t in terms if t.key]
    for h in top:
        context = f"{h.title}\n{' '.join(h.heading_path)}\n{h.text}"
        present = passage_terms(context)
        w = weighted_coverage(terms, present)
        best_w = max(best_w, w)
        pb = bigrams(context.lower())
        best_b = max(best_b, len(qbigrams & pb) / len(qbigrams) if qbigrams else w)
        best_k = max(best_k, sum(t.term in present for t in keys) / len(keys) if keys else 1.0)
        absent = [t.weight for t in terms if t.term not in present]
        best_missing = min(best_missing, (max(absent) if absent else 0.0) / MAX_WEIGHT)
        heading = passage_terms(f"{h.title}\n{' '.join(h.heading_path)}")
        for s in sentences(h.text):
            best_s = max(best_s, weighted_coverage(terms, passage_terms(s) | heading))
    lexical = max(h.lexical_coverage for h in top)
    return Signals(dense, gap, lexical, best_w, best_b, best_k, best_s, best_missing)


@dataclass(frozen=True)
class CoverageModel:
    """Standardised logistic regression over `FEATURES`; covered when P(answerable) >= threshold."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    def probability(self, s: Signals) -> float:
        return self.probability_vector(s.vector())

    def probability_vector(self, v: np.ndarray) -> float:
        z = (v - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(z @ np.asarray(self.coef) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))

    def to_json(self) -> dict[str, object]:
        return {"features": list(FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept, "threshold": self.threshold}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> "CoverageModel":
        if list(d["features"]) != list(FEATURES):  # type: ignore[call-overload]
            raise ValueError(f"coverage model features {d['features']} are not {list(FEATURES)}")
        return cls(tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]),  # type: ignore[arg-type]
                   float(d["intercept"]), float(d["threshold"]))  # type: ignore[arg-type]


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, threshold: float = 0.5,
        iterations: int = 50) -> CoverageModel:
    """Logistic regression by Newton's method, classes weighted to balance, L2 on the coefficients."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    pos = y.mean()
    sw = np.where(y > 0.5, 0.5 / max(pos, 1e-9), 0.5 / max(1 - pos, 1e-9))
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (sw * (p - y)) + reg * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return CoverageModel(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w[:-1].tolist()), float(w[-1]),
                         threshold)


@lru_cache(maxsize=1)
def _models() -> dict[str, dict[str, object]]:
    if not MODEL_FILE.exists():
        return {}
    return json.loads(MODEL_FILE.read_text(encoding="utf-8"))


def model_for(embedder_name: str) -> CoverageModel | None:
    """The fitted model of an embedder (by name prefix, as the thresholds), or None."""
    d = per_embedder(_models(), embedder_name, None)
    return CoverageModel.from_json(d) if d is not None else None


class CoverageDecider:
    """The covered/not-covered decision of one embedder: the fitted model, else the thresholds."""

    def __init__(self, embedder_name: str, model: CoverageModel | None = None,
                 thresholds: Thresholds | None = None, use_model: bool = True) -> None:
        self.model = (model or model_for(embedder_name)) if use_model else None
        self.thresholds = thresholds or thresholds_for(embedder_name)

    def decide(self, query: str, hits: Sequence[Hit]) -> Decision:
        if not hits:
            return Decision(False, 0.0, None)
        if self.model is None:
            ok = is_covered(hits, self.thresholds)
            return Decision(ok, float(ok), None)
        s = signals(query, hits)
        p = self.model.probability(s)
        # the old rule's strong-cosine arm stays sufficient: questions paraphrased away from the
        # page's words have little lexical support, and eval-dev (copy-style questions) underrates that
        return Decision(p >= self.model.threshold or s.dense >= self.thresholds.dense_strong, p, s)
