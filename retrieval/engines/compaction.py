"""Compaction of an embedded shard: its write segment turned into a finished one, in a child process.

While a segment is open for writes, the engine keeps its sparse index on the heap (~14 bytes a posting,
~0.45 GB at 200k chunks). The engine's optimizer turns such a segment into a finished one, whose sparse
index, vectors and payload are memory-mapped files (a 200k-chunk index: 1,080 → 413 MB RSS after
searching, reopen 2.3 → 0.15 s). The optimizer holds the GIL for its whole run and peaks well above the
shard's own size, so it never runs in the process that serves: `EdgeEngine.compact` copies the shard
(writes to it wait, searches go on), runs `python -m retrieval.engines.compaction COPY` on the copy, and
swaps the finished copy in. Finished segments keep exact search (no HNSW graph: m=0) and are merged only up
to SEGMENT_KB of vectors, so compacting new chunks never rewrites the whole index.

The copy lives in ROOT/.compact/NAME and the replaced shard in ROOT/.retired/NAME; `recover` puts a folder
left half-way by a killed process back to a whole shard (the old one, or the finished copy).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
WORK = ".compact"  # names start with a dot, so they are never taken for a collection
RETIRED = ".retired"
DONE = ".compacted"  # written into the copy by the child once the copy is whole and finished
# the engine's max_segment_size. With 40 MB the ~20k chunks of one compaction make a segment that is not
# merged again: a compaction's child peaked at 420 MB instead of 1,172 (100 MB cap, which re-merged the
# growing segment up to ~83k chunks), search as fast (bench/compaction_bench.py, bench/index_bench.py)
SEGMENT_KB = 40_000
_APPENDABLE = "mutable_id_tracker.mappings"  # only a segment open for writes has this file


def sparse_params(qe: Any) -> Any:
    """The sparse vector of a collection: IDF modifier; once finished, its index is a memory-mapped file."""
    return qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=qe.Memory.Cold)


def finished_segments(qe: Any) -> dict[str, Any]:
    """Settings under which the optimizer makes finished segments searched exactly (no HNSW graph: m=0;
    an HNSW graph with default parameters lost recall against exact search, and exact search is fast enough),
    merging them only up to SEGMENT_KB."""
    return {"hnsw_config": qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000),
            "optimizers": qe.EdgeOptimizersConfig(indexing_threshold=1, max_segment_size=SEGMENT_KB,
                                                  prevent_unoptimized=False)}


def appendable_mb(shard_dir: Path) -> float:
    """MB on disk (allocated: the engine preallocates sparse files) of the segments open for writes."""
    total = 0
    for seg in (shard_dir / "segments").iterdir() if (shard_dir / "segments").is_dir() else ():
        if (seg / _APPENDABLE).exists():
            total += sum(f.stat().st_blocks * 512 for f in seg.rglob("*") if f.is_file())
    return total / 1e6


def compact_in_child(shard_dir: Path, work: Path, timeout: float | None = None) -> dict[str, Any]:
    """Copy the (flushed, unwritten) shard to `work` and compact the copy in a child process.

    Returns the child's report; raises RuntimeError (the copy removed) when the child fails.
    """
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        work.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(shard_dir, work)
        (work / DONE).unlink(missing_ok=True)  # the mark of the compaction that made this shard
    except OSError as exc:  # e.g. the disk is full: the shard itself is untouched
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"compaction of {shard_dir.name} failed: cannot copy the shard: {exc}") from None
    copied = time.perf_counter() - t0
    import subprocess

    cmd = [sys.executable, "-m", "retrieval.engines.compaction", str(work), str(os.getpid())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_project_root()),
                                                                    os.environ.get("PYTHONPATH", "")]))}
    # no preexec_fn: forking a threaded process that way can deadlock (OpenBLAS's fork handler waited
    # for its threads while the GIL was held); the child sets its own parent-death signal instead
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0 or not (work / DONE).exists():
        shutil.rmtree(work, ignore_errors=True)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise RuntimeError(f"compaction of {shard_dir.name} failed: {tail[0]}")
    report = json.loads((work / DONE).read_text(encoding="utf-8"))
    report["copy_s"] = round(copied, 2)
    return report


def recover(root: Path) -> None:
    """Make every collection whole again after a compaction that a killed process left half-way."""
    for name in _names(root / WORK) | _names(root / RETIRED):
        live, work, retired = root / name, root / WORK / name, root / RETIRED / name
        if not (live / "edge_config.json").exists():
            if (work / DONE).exists():  # killed between the two renames: the finished copy is whole
                shutil.rmtree(live, ignore_errors=True)
                work.rename(live)
            elif (retired / "edge_config.json").exists():
                shutil.rmtree(live, ignore_errors=True)
                retired.rename(live)
            log.warning("collection %s restored after an interrupted compaction", name)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    for folder in (root / WORK, root / RETIRED):
        shutil.rmtree(folder, ignore_errors=True)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _die_with(parent: int) -> None:
    """Be killed when the process that asked for the compaction dies (Linux), or stop if it is gone."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above took effect
        sys.exit(1)


def main(argv: list[str]) -> int:
    """The child: open the copy (a collection with a sparse vector) with the finished-segment settings,
    optimise until nothing is left to do, and mark it done."""
    import qdrant_edge as qe

    path = Path(argv[0])
    if len(argv) > 1:
        _die_with(int(argv[1]))
    t0 = time.perf_counter()
    config = qe.EdgeConfig(sparse_vectors={"sparse": sparse_params(qe)}, **finished_segments(qe))
    shard = qe.EdgeShard.load(str(path), config)
    loaded = time.perf_counter()
    shard.optimize()
    info = shard.info()
    shard.close()
    report = {"load_s": round(loaded - t0, 2), "optimize_s": round(time.perf_counter() - loaded, 2),
              "segments": int(info.segments_count), "points": int(info.points_count),
              "appendable_mb_after": round(appendable_mb(path), 2)}
    (path / DONE).write_text(json.dumps(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
