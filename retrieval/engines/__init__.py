"""One interface to the vector engine, with two implementations behind it.

`EdgeEngine` runs the real Qdrant engine in-process (qdrant-edge, one shard per collection under
DATA_DIR/qdrant-edge/); `ServerEngine` talks to a Qdrant server through qdrant-client. The index,
search and the question log speak only this interface, in our own plain types, so nothing above
`retrieval/` knows which engine runs. Every collection has at most one dense vector named
`dense` and one sparse vector named `sparse` (with the IDF modifier); filters are keyword
"field is any of these values" conditions, answered by payload indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Protocol, Sequence

PointId = str | int
Fusion = Literal["rrf", "dbsf"]
RRF_K = 2  # Qdrant's default rank constant; both engines get it explicitly


@dataclass(frozen=True)
class Sparse:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection stores: a dense vector of this size (None: none), a sparse one, indexed keys."""

    dense_dim: int | None = None
    sparse: bool = False
    keyword_indexes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PointData:
    """A point to write (or one read back with its vectors)."""

    id: PointId
    payload: dict[str, Any] = field(default_factory=dict)
    dense: list[float] | None = None
    sparse: Sparse | None = None


@dataclass(frozen=True)
class Record:
    id: PointId
    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: Sparse | None = None


@dataclass(frozen=True)
class Scored:
    id: PointId
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Compaction:
    """One compaction of an embedded collection's write segment (see retrieval.engines.compaction)."""

    collection: str
    appendable_mb: float  # what the write segment held on disk before
    seconds: float  # from the copy to the swap
    copy_s: float
    optimize_s: float
    segments: int  # after


KeywordFilter = Mapping[str, Sequence[str]]  # field -> any of these values; all fields must match
# field -> "empty (absent or []) or any of these values"; all fields must match (e.g. a page's readers)
EmptyOrFilter = Mapping[str, Sequence[str]]


class Engine(Protocol):
    """The operations the index needs; every write is durable (and visible) when the call returns."""

    kind: Literal["embedded", "server"]
    location: str  # a folder or a URL, for messages

    def collection_exists(self, name: str) -> bool: ...
    def collections(self) -> list[str]: ...
    def create_collection(self, name: str, spec: CollectionSpec) -> None: ...
    def delete_collection(self, name: str) -> None: ...
    def spec(self, name: str) -> CollectionSpec: ...
    def upsert(self, name: str, points: Sequence[PointData]) -> None: ...
    def retrieve(self, name: str, ids: Sequence[PointId], *, with_payload: bool = True,
                 with_vectors: bool = False) -> list[Record]: ...
    def set_payload(self, name: str, ids: Sequence[PointId], payload: dict[str, Any]) -> None: ...
    def delete(self, name: str, ids: Sequence[PointId]) -> None: ...
    def scroll(self, name: str, *, limit: int = 1000, offset: PointId | None = None,
               with_vectors: bool = False) -> tuple[list[Record], PointId | None]: ...
    def count(self, name: str) -> int: ...
    def query(self, name: str, *, dense: Sequence[float] | None = None, sparse: Sparse | None = None,
              limit: int = 10, where: KeywordFilter | None = None, fusion: Fusion = "rrf",
              empty_or: EmptyOrFilter | None = None) -> list[Scored]:
        """Nearest points by dense, sparse, or both fused (each side prefetches `limit`)."""
        ...
    def compact(self, name: str) -> Compaction | None:
        """Settle what writes left unfinished, if that is the engine's job and worth it now."""
        ...
    def close(self) -> None: ...


def open_engine(data_dir: Path | str, url: str = "", api_key: str = "", compact_above_mb: float = 64.0) -> Engine:
    """The Qdrant server at `url`, else the embedded engine under `data_dir/qdrant-edge` (which compacts a
    collection's write segment once it holds more than `compact_above_mb` on disk; 0: never)."""
    if url:
        from retrieval.engines.server import ServerEngine

        return ServerEngine.connect(url, api_key)
    from retrieval.engines.copy import migrate_legacy
    from retrieval.engines.edge import LEGACY_FOLDER, EdgeEngine, is_legacy_folder

    engine = EdgeEngine.open(Path(data_dir), compact_above_mb)
    try:  # carry an older wikibot's local-mode index over, once
        legacy = Path(data_dir) / LEGACY_FOLDER
        if is_legacy_folder(legacy) and not engine.collections():
            migrate_legacy(legacy, engine)
    except BaseException:
        engine.close()
        raise
    return engine


def norm_id(value: Any) -> PointId:
    """Engines hand ids back as int, str or UUID; ours are int or str."""
    return value if isinstance(value, int) else str(value)


__all__ = ["Engine", "Compaction", "CollectionSpec", "PointData", "Record", "Scored", "Sparse", "KeywordFilter",
           "EmptyOrFilter", "PointId", "Fusion", "open_engine", "norm_id", "RRF_K"]
