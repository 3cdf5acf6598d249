"""The embedded index at scale: search latency, recall, upsert rate, reopen time, memory, event-loop stalls.

    python bench/index_bench.py --sizes 50000,200000 [--compact-above-mb 64] [--queries 200] [--out rows.json]

Synthetic but realistically shaped data: 384-dim unit dense vectors; sparse vectors of ~60 distinct
terms drawn from a Zipf(1) vocabulary of 50k terms with BM25 document weights (as `retrieval.sparse`
makes them); 5 chunks per page, pages spread over 50 spaces (one space = 2%), ~300-character
Chinese texts in the payload. Each size runs in two child processes:

- build: creates the index through the engine interface (WikiIndex's collections: chunks with payload
  indexes on page_id and space, and page records), upserting in batches of 256 (upsert rate, peak RSS),
  compacting as a sync does (`EdgeEngine.compact` of the chunks after every 512 chunk points written and
  once at the end, with the engine's default threshold of 64 MB of write segment; --compact-above-mb 0:
  never, the index stays one write segment as before compaction existed), and checks the engine's dense
  top 10 against numpy brute force; it reports the compactions (count, time, the compaction child
  processes' peak RSS) and the segments left;
- serve: reopens the folder (reopen time: the collections checked; and with the chunks' shard opened,
  which the engine does on first use) and times `retrieval.search.search` — the full search path
  (hybrid engine query with RRF over dense + sparse prefetches, current-revision check, dense scores
  and lexical coverage of the hits) with the query vectors given, i.e. excluding query embedding — with
  and without a 2% space filter; recall of the hybrid top 10 against the engine's exact search; peak RSS
  of that process (what `serve` adds for the index); and the longest stall a 1 ms ticker thread sees
  while another thread searches or writes (the GIL: an asyncio loop would stall as long).

Timings on a shared 2-core machine are noisy: run twice and read the spread.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIM, VOCAB, TERMS, SPACES, CHUNKS_PER_PAGE = 384, 50_000, 75, 50, 5
ZH = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府"


EVAL_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval-dev" / "docs"


def _texts() -> list[str]:
    """Real passage texts (eval-dev pages, chunked as the index does) for the payloads; filler if absent."""
    from retrieval.chunker import chunk_page
    from retrieval.pages import read_markdown_folder

    out = [c.text for p in read_markdown_folder(EVAL_DOCS) for c in chunk_page(p, 480, 80)] \
        if EVAL_DOCS.is_dir() else []
    return out or [ZH[:300]]


def gen(n: int, seed: int, d: Path, n_queries: int = 200) -> None:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, DIM), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    p = 1.0 / np.arange(1, VOCAB + 1)
    p /= p.sum()
    perm = rng.permutation(VOCAB).astype(np.int64) * 40_000 + 17  # spread like crc32 term ids
    lens = rng.poisson(TERMS, size=n).clip(20, None)
    toks = rng.choice(VOCAB, size=int(lens.sum()), p=p)
    ptr, inds, vals, off, avg = [0], [], [], 0, lens.mean()
    for L in lens:
        t, tf = np.unique(perm[toks[off:off + L]], return_counts=True)
        off += L
        w = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * L / avg))
        inds.append(t)
        vals.append(w.astype(np.float32))
        ptr.append(ptr[-1] + len(t))
    np.save(d / "X.npy", X)
    np.save(d / "ptr.npy", np.array(ptr))
    np.save(d / "ind.npy", np.concatenate(inds))
    np.save(d / "val.npy", np.concatenate(vals))
    src = rng.integers(0, n, size=n_queries)
    Q = X[src] + rng.standard_normal((n_queries, DIM), dtype=np.float32) / np.sqrt(DIM)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    qind = [sorted(set(perm[rng.choice(VOCAB, size=12, p=p)].tolist())) for _ in range(n_queries)]
    np.save(d / "Q.npy", Q)
    (d / "q.json").write_text(json.dumps({"qind": qind, "qspace": rng.integers(0, SPACES, n_queries).tolist()}))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_parts() -> dict[str, int]:
    """Resident memory now, in MiB: anonymous (the heap) and file-backed (mmapped index files, evictable)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(val.split()[0]) // 1024
    return out


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs) * 1000, q)), 2)


def _uid(i: int) -> str:
    """Chunk ids are UUIDs, as in the index."""
    return str(uuid.UUID(int=i + 1))


def _num(pid: object) -> int:
    return uuid.UUID(str(pid)).int - 1


class _Embedder:
    name, dim = "bench", DIM

    def embed_query(self, text: str) -> np.ndarray:  # pragma: no cover - vectors are given
        raise AssertionError

    embed_passages = embed_query


class Ticker:
    """A thread that sleeps 1 ms at a time and records how late it wakes: the GIL stalls it sees."""

    def __init__(self) -> None:
        self.lates: list[float] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            time.sleep(0.001)
            self.lates.append(time.perf_counter() - t - 0.001)

    def __enter__(self) -> "Ticker":
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    def report(self) -> dict[str, float]:
        return {"stall_p99_ms": pct(self.lates, 99), "stall_max_ms": pct(self.lates, 100)}


def _index(root: Path, compact_above_mb: float = 64.0):  # type: ignore[no-untyped-def]
    from retrieval.engines.edge import EdgeEngine
    from retrieval.index import WikiIndex

    engine = EdgeEngine.open(root, compact_above_mb)
    return WikiIndex(engine, _Embedder(), prefix="bench")  # type: ignore[arg-type]


def children_peak_mb() -> float:
    """The largest peak RSS of the child processes waited for so far (here: the compaction children)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class Compactor:
    """Compacts a collection as a sync does: `engine.compact(name)` once `every` points were written since
    the last look (WikiIndex: COMPACT_CHECK_EVERY chunk points, looked at between pages), and once at the end
    (`finish`). The engine itself decides whether the write segment is big enough (its compact_above_mb)."""

    def __init__(self, engine: Any, name: str, every: int | None = None) -> None:
        from retrieval.index import COMPACT_CHECK_EVERY

        self.engine, self.name = engine, name
        self.every = COMPACT_CHECK_EVERY if every is None else every
        self.written = 0
        self.done: list[Any] = []  # retrieval.engines.Compaction, one per compaction that ran
        self.calls = 0
        self.calls_s = 0.0  # every compact() call, the ones that found too little to do included

    def wrote(self, n: int) -> None:
        self.written += n
        if self.written >= self.every:
            self.check()

    def check(self) -> Any:
        self.written = 0
        t = time.perf_counter()
        done = self.engine.compact(self.name)
        self.calls += 1
        self.calls_s += time.perf_counter() - t
        if done is not None:
            self.done.append(done)
        return done

    finish = check

    def report(self) -> dict[str, Any]:
        d = self.done
        return {"compactions": len(d), "compaction_s": round(sum(c.seconds for c in d), 1),
                "compaction_copy_s": round(sum(c.copy_s for c in d), 1),
                "compaction_optimize_s": round(sum(c.optimize_s for c in d), 1),
                "compaction_max_s": max((c.seconds for c in d), default=0.0),
                "compaction_write_segment_mb": [c.appendable_mb for c in d],
                "compact_calls": self.calls, "compact_calls_s": round(self.calls_s, 1),
                "segments_after_last_compaction": d[-1].segments if d else None}


def segments(shard_dir: Path) -> dict[str, Any]:
    """A shard's segments: how many, how many still open for writes, and the MB those hold on disk."""
    from retrieval.engines.compaction import _APPENDABLE, appendable_mb

    segs = [p for p in (shard_dir / "segments").iterdir() if p.is_dir()]
    return {"segments": len(segs), "appendable": sum((p / _APPENDABLE).exists() for p in segs),
            "appendable_mb": round(appendable_mb(shard_dir), 1)}


def child_build(data: Path, root: Path, compact_above_mb: float = 64.0) -> dict:
    from retrieval.engines import PointData, Sparse
    from retrieval.ids import page_point_id

    X = np.load(data / "X.npy")
    ptr, ind, val = np.load(data / "ptr.npy"), np.load(data / "ind.npy"), np.load(data / "val.npy")
    n = len(X)
    texts = _texts()
    ix = _index(root, compact_above_mb)
    ix.ensure_collections()
    out: dict = {"n": n, "compact_above_mb": compact_above_mb}
    compactor = Compactor(ix.engine, ix.chunks_collection)

    def chunk(i: int) -> PointData:
        page = i // CHUNKS_PER_PAGE
        text = texts[i % len(texts)]
        return PointData(_uid(i), {"page_id": f"p{page}", "space": f"s{page % SPACES}", "title": f"页面 {page}",
                             "url": f"https://wiki.example/p{page}", "path": ["空间", "目录"], "heading_path": ["标题"],
                             "text": text, "start": 0, "end": len(text), "revs": ["r1"], "edited_at": ""},
                         dense=X[i].tolist(), sparse=Sparse(ind[ptr[i]:ptr[i + 1]].tolist(),
                                                            val[ptr[i]:ptr[i + 1]].tolist()))

    t0 = time.perf_counter()
    with Ticker() as tick:
        for s in range(0, n, 256):
            e = min(n, s + 256)
            ix.engine.upsert(ix.chunks_collection, [chunk(i) for i in range(s, e)])
            pages = sorted({i // CHUNKS_PER_PAGE for i in range(s, e)})
            ix.engine.upsert(ix.pages_collection, [PointData(page_point_id(f"p{p}"), {
                "page_id": f"p{p}", "rev": "r1", "space": f"s{p % SPACES}", "chunk_ids": [], "pending_ids": []})
                for p in pages])
            compactor.wrote(e - s)
        compactor.finish()
    secs = time.perf_counter() - t0
    ix.engine.flush()  # a write segment is recognisable on disk once flushed
    out.update(upsert_s=round(secs, 1), upsert_points_per_s=round(n / secs), build_peak_rss_mb=round(peak_mb()),
               **{f"upsert_{k}": v for k, v in tick.report().items()}, **compactor.report(),
               compaction_child_peak_rss_mb=round(children_peak_mb()),
               build_rss_mb_at_end=rss_parts(), **segments(ix.engine.root / ix.chunks_collection))
    # the engine's dense top 10 against numpy brute force (exactness of its search, compacted or not)
    Q = np.load(data / "Q.npy")[:50]
    rec = []
    for q in Q:
        truth = set(np.argsort(-(X @ q))[:10].tolist())
        got = {_num(p.id) for p in ix.engine.query(ix.chunks_collection, dense=q.tolist(), limit=10)}
        rec.append(len(truth & got) / 10)
    out["dense_recall_vs_numpy"] = round(float(np.mean(rec)), 4)
    t = time.perf_counter()
    ix.close()
    out["close_s"] = round(time.perf_counter() - t, 2)
    return out


def child_serve(data: Path, root: Path, n_queries: int) -> dict:
    from retrieval.search import search
    from retrieval.sparse import SparseVector

    Q = np.load(data / "Q.npy")
    qj = json.loads((data / "q.json").read_text())
    import retrieval.search  # noqa: F401  (imports counted before the index opens)
    rss0 = rss_parts()
    t = time.perf_counter()
    ix = _index(root)
    ix.ensure_collections()
    out: dict = {"reopen_s": round(time.perf_counter() - t, 3)}
    ix.engine._shard(ix.chunks_collection)  # the engine opens a shard on first use: the chunks' shard now
    out.update(reopen_with_chunks_shard_s=round(time.perf_counter() - t, 3), rss_mb_before_reopen=rss0,
               rss_mb_after_reopen=rss_parts())
    t = time.perf_counter()
    search(ix, "首次", k=6, dense_vector=Q[0], sparse_vector=SparseVector(qj["qind"][0], [1.0] * len(qj["qind"][0])))
    out["first_search_after_reopen_ms"] = round((time.perf_counter() - t) * 1000, 1)
    shard = ix.engine._shard(ix.chunks_collection)
    qe = ix.engine.qe

    def exact_top10(j: int, space: str | None, n: int = 40) -> list[int]:
        """The same hybrid query search() makes (40 per side, RRF), scored exactly; its top 10."""
        flt = None if space is None else qe.Filter(must=[qe.FieldCondition(key="space", match=qe.MatchAny(any=[space]))])
        sp = qe.SparseVector(indices=qj["qind"][j], values=[1.0] * len(qj["qind"][j]))
        exact = qe.SearchParams(exact=True)
        r = shard.query(qe.QueryRequest(limit=n, query=qe.Fusion.Rrf(k=2), prefetches=[
            qe.Prefetch(limit=n, query=qe.Query.Nearest(Q[j].tolist(), using="dense"), filter=flt, params=exact),
            qe.Prefetch(limit=n, query=qe.Query.Nearest(sp, using="sparse"), filter=flt, params=exact)]))
        return [_num(p.id) for p in r][:10]

    from retrieval.engines import Sparse

    for label, filtered in (("engine_query", False), ("engine_query_2pct_space_filter", True)):
        lat = []
        for j in range(n_queries):
            where = {"space": [f"s{qj['qspace'][j]}"]} if filtered else None
            t = time.perf_counter()
            ix.engine.query(ix.chunks_collection, dense=Q[j].tolist(), limit=40, where=where,
                            sparse=Sparse(qj["qind"][j], [1.0] * len(qj["qind"][j])))
            lat.append(time.perf_counter() - t)
        out[label] = {"p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95)}
    for label, filtered in (("search", False), ("search_2pct_space_filter", True)):
        lat, recall = [], []
        for j in range(n_queries):
            space = f"s{qj['qspace'][j]}" if filtered else None
            sv = SparseVector(qj["qind"][j], [1.0] * len(qj["qind"][j]))
            t = time.perf_counter()
            hits = search(ix, "查询", k=10, spaces=[space] if space else None, dense_vector=Q[j], sparse_vector=sv)
            lat.append(time.perf_counter() - t)
            if j < 50:
                # the engine query search() makes fetches 40 per side; exact reference with the same sizes
                truth = exact_top10(j, space)
                recall.append(len({_num(h.chunk_id) for h in hits} & set(truth)) / max(1, len(truth)))
                assert not filtered or all(h.space == space for h in hits)
        out[label] = {"p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "queries": n_queries,
                      "recall_at_10_vs_exact": round(float(np.mean(recall)), 4)}
    # GIL: how long does a 1 ms ticker stall while another thread searches?
    stop = threading.Event()

    def load() -> None:
        j = 0
        while not stop.is_set():
            sv = SparseVector(qj["qind"][j % 200], [1.0] * len(qj["qind"][j % 200]))
            search(ix, "查询", k=10, dense_vector=Q[j % 200], sparse_vector=sv)
            j += 1

    with Ticker() as tick:
        th = threading.Thread(target=load)
        th.start()
        time.sleep(3)
        stop.set()
        th.join()
    out.update({f"search_{k}": v for k, v in tick.report().items()})
    out["serve_rss_mb_at_end"] = rss_parts()
    ix.close()
    out["serve_peak_rss_mb"] = round(peak_mb())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="50000,200000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--compact-above-mb", type=float, default=64.0,
                    help="compact the chunks while building once their write segment holds more (0: never)")
    ap.add_argument("--out", default="")
    ap.add_argument("--child", nargs=3, metavar=("WHAT", "DATA", "ROOT"))
    args = ap.parse_args()
    if args.child:
        what, data, root = args.child
        res = child_build(Path(data), Path(root), args.compact_above_mb) if what == "build" else \
            child_serve(Path(data), Path(root), args.queries)
        print("RESULT " + json.dumps(res))
        return
    results = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        tmp = Path(tempfile.mkdtemp(prefix=f"index-bench-{n}-"))
        try:
            t = time.perf_counter()
            gen(n, n, tmp)
            row: dict = {"n": n, "gen_s": round(time.perf_counter() - t, 1),
                         "load_average_at_start": os.getloadavg()[0]}
            for what in ("build", "serve"):
                p = subprocess.run([sys.executable, __file__, "--queries", str(args.queries),
                                    "--compact-above-mb", str(args.compact_above_mb),
                                    "--child", what, str(tmp), str(tmp / "index")],
                                   capture_output=True, text=True)
                line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
                if not line:
                    raise SystemExit(f"{what} failed:\n{p.stderr[-3000:]}")
                row.update(json.loads(line[0][7:]))
            row["load_average_at_end"] = os.getloadavg()[0]
            row["disk_mb"] = round(sum(f.stat().st_blocks * 512 for f in (tmp / "index").rglob("*") if f.is_file()) / 2**20)
            print(json.dumps(row), flush=True)
            results.append(row)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
