"""`wikibot eval`: retrieval quality and no-answer detection on a question set."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from retrieval.embedders import Embedder
from retrieval.engines import open_engine
from retrieval.index import Hit, SearchMode, WikiIndex
from retrieval.pages import read_markdown_folder
from retrieval.coverage import CoverageDecider
from retrieval.relevance import Thresholds


@dataclass
class EvalResult:
    metrics: dict[str, float | int]
    by_language: dict[str, dict[str, float | int]] = field(default_factory=dict)
    index_seconds: float = 0.0
    chunks: int = 0
    signals: list[dict[str, Any]] = field(default_factory=list)  # per question, for threshold tuning


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_eval_index(docs: Path, embedder: Embedder, data_dir: Path, chunk_size: int, overlap: int,
                     progress: Callable[[int, int], None] | None = None) -> tuple[WikiIndex, float]:
    index = WikiIndex(open_engine(data_dir), embedder, prefix="eval", chunk_size=chunk_size, chunk_overlap=overlap)
    index.ensure_collections(rebuild=True)
    pages = list(read_markdown_folder(docs))
    start = time.perf_counter()
    for i, page in enumerate(pages):
        index.upsert_page(page)
        if progress:
            progress(i + 1, len(pages))
    return index, time.perf_counter() - start


def _pages_in_order(hits: Iterable[Hit]) -> list[str]:
    out: list[str] = []
    for h in hits:
        if h.page_id not in out:
            out.append(h.page_id)
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def evaluate(index: WikiIndex, questions: list[dict[str, Any]], unanswerable: list[dict[str, Any]],
             mode: SearchMode = "hybrid", thresholds: Thresholds | None = None,
             progress: Callable[[int, int], None] | None = None) -> EvalResult:
    decider = CoverageDecider(index.embedder.name, thresholds=thresholds, use_model=thresholds is None)
    total = len(questions) + len(unanswerable)
    per_lang: dict[str, dict[str, list[float]]] = {}
    latencies: list[float] = []
    signals: list[dict[str, Any]] = []
    false_no = 0
    for n, q in enumerate(questions):
        start = time.perf_counter()
        hits = index.search(q["question"], k=20, mode=mode)
        latencies.append((time.perf_counter() - start) * 1000)
        pages = _pages_in_order(hits)
        gold = q["doc_id"]
        rank = pages.index(gold) + 1 if gold in pages[:10] else 0
        answers = q.get("answers") or [q["answer"]]
        hit5 = any(a in h.text for h in hits[:5] for a in answers)
        covered = decider.decide(q["question"], hits).covered
        false_no += not covered
        row = per_lang.setdefault(q.get("lang", "all"), {"r1": [], "r5": [], "mrr": [], "hit5": []})
        row["r1"].append(float(rank == 1))
        row["r5"].append(float(0 < rank <= 5))
        row["mrr"].append(1.0 / rank if rank else 0.0)
        row["hit5"].append(float(hit5))
        signals.append(_signal(q, hits, answerable=True))
        if progress:
            progress(n + 1, total)
    detected = 0
    for m, q in enumerate(unanswerable):
        start = time.perf_counter()
        hits = index.search(q["question"], k=20, mode=mode)
        latencies.append((time.perf_counter() - start) * 1000)
        detected += not decider.decide(q["question"], hits).covered
        signals.append(_signal(q, hits, answerable=False))
        if progress:
            progress(len(questions) + m + 1, total)

    def agg(rows: dict[str, list[float]]) -> dict[str, float | int]:
        n = len(rows["r1"]) or 1
        return {"recall@1": sum(rows["r1"]) / n, "recall@5": sum(rows["r5"]) / n,
                "mrr@10": sum(rows["mrr"]) / n, "answer_hit@5": sum(rows["hit5"]) / n,
                "questions": len(rows["r1"])}

    all_rows: dict[str, list[float]] = {"r1": [], "r5": [], "mrr": [], "hit5": []}
    for rows in per_lang.values():
        for k in all_rows:
            all_rows[k].extend(rows[k])
    metrics = agg(all_rows)
    metrics.update({
        "latency_ms_p50": _pct(latencies, 0.5), "latency_ms_p95": _pct(latencies, 0.95),
        "no_answer_detected": detected / len(unanswerable) if unanswerable else 0.0,
        "false_no_answer": false_no / len(questions) if questions else 0.0,
        "questions": len(questions),
    })
    return EvalResult(metrics, {lang: agg(rows) for lang, rows in per_lang.items()}, signals=signals)


def _signal(q: dict[str, Any], hits: list[Hit], answerable: bool) -> dict[str, Any]:
    return {"id": q["id"], "answerable": answerable, "lang": q.get("lang"),
            "top": [(h.dense_score, h.lexical_coverage) for h in hits[:3]]}


def run_eval(docs: Path, questions_file: Path, unanswerable_file: Path | None, embedder: Embedder,
             chunk_size: int, overlap: int, mode: SearchMode = "hybrid",
             progress: Callable[[str, int, int], None] | None = None) -> EvalResult:
    questions = load_jsonl(questions_file)
    unanswerable = load_jsonl(unanswerable_file) if unanswerable_file else []
    with tempfile.TemporaryDirectory(prefix="wikibot-eval-") as tmp:
        index, seconds = build_eval_index(
            docs, embedder, Path(tmp), chunk_size, overlap,
            (lambda i, n: progress("indexing", i, n)) if progress else None)
        try:
            result = evaluate(index, questions, unanswerable, mode,
                              progress=(lambda i, n: progress("questions", i, n)) if progress else None)
            result.index_seconds = seconds
            result.chunks = index.count_chunks()
        finally:
            index.close()
    return result
