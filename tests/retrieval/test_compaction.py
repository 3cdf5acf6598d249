"""Compaction of the embedded index: a collection's write segment finished in a child process on a copy.

What a user relies on: the index answers exactly as before, a write made meanwhile is kept, searches
go on, and a process killed at any moment (or a child that dies) leaves a whole collection behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.engines import CollectionSpec, PointData, Sparse, compaction
from retrieval.engines.edge import EdgeEngine
from retrieval.index import WikiIndex
from retrieval.sources import MarkdownFolderSource
from retrieval.sync import sync_wiki

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_WIKI = ROOT / "bot" / "sample_wiki"
NAME = "k_chunks"
DIM = 32
QUESTIONS = ["微调和增量训练有什么区别？", "GPU 怎么申请？", "how do I choose an embedding model",
             "数据安全有哪些规定", "RAG 的检索怎么做"]


def _finished_segments(shard: Path) -> list[Path]:
    return [s for s in (shard / "segments").iterdir() if (s / "id_tracker.mappings").exists()]


def _same_ranking(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> bool:
    """The same scores, and the same passages above the last score (fused ranks tie; ties may swap)."""
    last = min(score for _, score in a)
    return (sorted(s for _, s in a) == sorted(s for _, s in b)
            and {i for i, s in a if s > last} == {i for i, s in b if s > last})


def _fill(engine: EdgeEngine, n: int, start: int = 0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    for lo in range(0, n, 500):
        points = []
        for i in range(lo, min(n, lo + 500)):
            terms = sorted({int(t) for t in rng.integers(0, 5000, 12)})
            points.append(PointData(start + i, {"space": f"s{i % 7}", "i": start + i}, dense=vectors[i].tolist(),
                                    sparse=Sparse(terms, [float(w) for w in rng.random(len(terms)) + 0.1])))
        engine.upsert(NAME, points)


def _engine(path: Path, n: int, above_mb: float = 0.001) -> EdgeEngine:
    engine = EdgeEngine.open(path, compact_above_mb=above_mb)
    engine.create_collection(NAME, CollectionSpec(dense_dim=DIM, sparse=True, keyword_indexes=("space",)))
    _fill(engine, n)
    return engine


def _answers(engine: EdgeEngine) -> list[list[tuple[object, float]]]:
    rng = np.random.default_rng(7)
    out = []
    for j in range(12):
        dense = rng.standard_normal(DIM).astype(np.float32).tolist()
        sparse = Sparse(sorted({int(t) for t in rng.integers(0, 5000, 6)}), [1.0] * 6)
        where = {"space": ["s1", "s3"]} if j % 2 else None
        for kwargs in ({"dense": dense}, {"sparse": sparse}, {"dense": dense, "sparse": sparse}):
            hits = engine.query(NAME, limit=10, where=where, **kwargs)  # type: ignore[arg-type]
            out.append([(h.id, round(h.score, 4)) for h in hits])
    return out


def _same_answers(a: list[list[tuple[object, float]]], b: list[list[tuple[object, float]]]) -> bool:
    return len(a) == len(b) and all(_same_ranking(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]


def test_a_synced_wiki_answers_exactly_as_before_once_compacted(tmp_path, usem3_embedder):
    plain = WikiIndex(EdgeEngine.open(tmp_path / "plain", compact_above_mb=0), usem3_embedder)
    compacted = WikiIndex(EdgeEngine.open(tmp_path / "compacted", compact_above_mb=0.001), usem3_embedder)
    source = MarkdownFolderSource(SAMPLE_WIKI)
    try:
        for ix in (plain, compacted):
            sync_wiki(ix, source)
        shard = tmp_path / "compacted" / "qdrant-edge" / compacted.chunks_collection
        assert _finished_segments(shard), "the sync's write segment was not finished"
        assert not _finished_segments(tmp_path / "plain" / "qdrant-edge" / plain.chunks_collection)
        for q in QUESTIONS:
            for mode in ("hybrid", "dense", "sparse"):
                a = [(h.chunk_id, round(h.score, 4)) for h in plain.search(q, k=8, mode=mode)]
                b = [(h.chunk_id, round(h.score, 4)) for h in compacted.search(q, k=8, mode=mode)]
                assert a and _same_ranking(a, b), (q, mode, a, b)
        # an edit after compaction lands in a new write segment and replaces the old version
        page = next(p for p in (source.fetch_page(s) for s in source.list_pages().stubs) if "finetune" in p.id)
        edited = replace(page, body=page.body + "\n\n## 新增\n\n增量训练的学习率一般取预训练末期的十分之一。\n")
        for ix in (plain, compacted):
            ix.upsert_page(edited)
        q = "增量训练的学习率取多少"
        for mode in ("hybrid", "dense"):
            a = [(h.chunk_id, round(h.score, 4)) for h in plain.search(q, k=5, mode=mode)]
            assert _same_ranking(a, [(h.chunk_id, round(h.score, 4)) for h in compacted.search(q, k=5, mode=mode)])
        # lexical scores move a little: a finished segment counts its deleted passages in the IDF until the
        # engine vacuums it (past 20% deleted); the order stays
        assert [h.chunk_id for h in compacted.search(q, k=5, mode="sparse")] == \
            [h.chunk_id for h in plain.search(q, k=5, mode="sparse")]
        assert "十分之一" in compacted.search(q, k=1)[0].text
        assert compacted.count_chunks() == plain.count_chunks()
    finally:
        plain.close()
        compacted.close()


def test_below_the_threshold_nothing_is_copied(tmp_path):
    engine = _engine(tmp_path, 300, above_mb=64)
    try:
        assert engine.compact(NAME) is None
        assert not (tmp_path / "qdrant-edge" / compaction.WORK).exists()
    finally:
        engine.close()


def test_searches_go_on_and_a_write_made_meanwhile_is_kept(tmp_path):
    engine = _engine(tmp_path, 3000)
    before = _answers(engine)
    done: dict[str, object] = {}
    worker = threading.Thread(target=lambda: done.update(result=engine.compact(NAME)))
    try:
        worker.start()
        work = tmp_path / "qdrant-edge" / compaction.WORK / NAME
        deadline = time.monotonic() + 120
        while not work.exists() and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert work.exists(), "the compaction never started its copy"
        searched_meanwhile = 0
        writer = threading.Thread(target=lambda: engine.upsert(NAME, [PointData(
            10**6, {"space": "s1"}, dense=[1.0] * DIM)]))
        writer.start()
        while worker.is_alive():
            assert engine.query(NAME, dense=[0.5] * DIM, limit=3)
            searched_meanwhile += worker.is_alive()
        writer.join(timeout=60)
        worker.join()
        assert searched_meanwhile > 0
        assert done["result"] is not None and done["result"].segments >= 1  # type: ignore[union-attr]
        assert engine.retrieve(NAME, [10**6]), "the write made during the compaction was lost"
        assert engine.count(NAME) == 3001
        engine.delete(NAME, [10**6])
        assert _same_answers(_answers(engine), before)
        assert _finished_segments(tmp_path / "qdrant-edge" / NAME)
        assert sorted(p.name for p in (tmp_path / "qdrant-edge").iterdir()) == [".wikibot.lock", NAME]
    finally:
        worker.join()
        engine.close()
    reopened = EdgeEngine.open(tmp_path)
    try:
        assert reopened.count(NAME) == 3000 and _same_answers(_answers(reopened), before)
    finally:
        reopened.close()


def _compaction_children(under: Path) -> list[int]:
    """Our compaction children working on a copy under this folder."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"retrieval.engines.compaction" in cmd and any(str(under).encode() in c for c in cmd):
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(sys.platform != "linux", reason="finds the child through /proc")
def test_a_child_that_dies_leaves_the_collection_as_it_was(tmp_path, usem3_embedder, caplog):
    engine = _engine(tmp_path, 20000)
    before = _answers(engine)
    index = WikiIndex(engine, usem3_embedder, prefix="k")  # its chunks collection is NAME
    done: dict[str, object] = {}
    worker = threading.Thread(target=lambda: done.update(result=index.compact()))
    try:
        worker.start()
        deadline = time.monotonic() + 120
        while not _compaction_children(tmp_path) and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid in _compaction_children(tmp_path):  # as the kernel's OOM killer would
            os.kill(pid, signal.SIGKILL)
        worker.join()
        assert done["result"] is None
        assert "compaction of k_chunks failed" in caplog.text and "the index is unchanged" in caplog.text
        assert engine.count(NAME) == 20000 and _same_answers(_answers(engine), before)
        assert not _finished_segments(tmp_path / "qdrant-edge" / NAME)
        assert not (tmp_path / "qdrant-edge" / compaction.WORK / NAME).exists()
        assert engine.compact(NAME) is not None  # the next attempt does it
        assert _same_answers(_answers(engine), before)
    finally:
        worker.join()
        engine.close()


def test_a_compaction_cut_off_between_its_steps_is_made_whole_on_open(tmp_path):
    engine = _engine(tmp_path, 1500)
    before = _answers(engine)
    engine.close()
    root = tmp_path / "qdrant-edge"
    live, work, retired = root / NAME, root / compaction.WORK / NAME, root / compaction.RETIRED / NAME

    # killed after the old shard was moved away, the finished copy not yet in its place
    compaction.compact_in_child(live, work)
    retired.parent.mkdir()
    live.rename(retired)
    engine = EdgeEngine.open(tmp_path)
    try:
        assert _finished_segments(live) and engine.count(NAME) == 1500 and _same_answers(_answers(engine), before)
        assert not work.exists() and not retired.exists()
    finally:
        engine.close()

    # killed while the child still worked on its copy, the old shard already moved away
    shutil.copytree(live, work)
    retired.parent.mkdir()
    live.rename(retired)
    engine = EdgeEngine.open(tmp_path)
    try:
        assert engine.count(NAME) == 1500 and _same_answers(_answers(engine), before)
        assert not work.exists() and not retired.exists()
    finally:
        engine.close()


_KILLED_WRITER = """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from tests.retrieval.test_compaction import NAME, _fill
    from retrieval.engines.edge import EdgeEngine
    engine = EdgeEngine.open(Path(sys.argv[1]), compact_above_mb=0.001)
    start = engine.count(NAME)
    _fill(engine, 600, start=start, seed=start)
    print(start + 600, flush=True)
    engine.compact(NAME)
    print("compacted", flush=True)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the child dies with its parent through PR_SET_PDEATHSIG")
def test_a_process_killed_at_any_moment_of_a_compaction_loses_nothing(tmp_path):
    _engine(tmp_path, 4000).close()
    expected = 4000
    for delay in (0.0, 0.1, 0.25, 0.5, 0.8, 1.2):
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_KILLED_WRITER), str(tmp_path), str(ROOT)],
                                cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        expected = int(proc.stdout.readline())  # every point written (and acknowledged) before the compaction
        time.sleep(delay)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while _compaction_children(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _compaction_children(tmp_path), "the compaction child outlived its parent"
        engine = EdgeEngine.open(tmp_path)
        try:
            assert engine.count(NAME) == expected, delay
            assert len(engine.retrieve(NAME, list(range(expected)))) == expected
            assert engine.query(NAME, dense=[0.5] * DIM, limit=3, where={"space": ["s2"]})
            assert sorted(p.name for p in (tmp_path / "qdrant-edge").iterdir()) == [".wikibot.lock", NAME]
        finally:
            engine.close()
