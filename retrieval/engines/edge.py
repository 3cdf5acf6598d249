"""The embedded engine: the real Qdrant engine in-process (qdrant-edge), one shard per collection.

Each collection is a shard folder under DATA_DIR/qdrant-edge/<name>. Shards stay plain segments
(indexing_threshold 0: no HNSW is ever built) and `optimize()` is never called: it holds the GIL
for its whole run (tens of seconds at 50k points, stalling every Python thread, the event loop
of `serve` included), and HNSW with default parameters lost recall against exact search, while
exact search over a plain segment measured fast enough (bench/index_bench.py; README).

One process owns the folder: a lock file taken at open (and each shard's own WAL lock) turns
a second wikibot process away with IndexLockedError instead of a corrupt index.

Dense vectors are stored as float16 in "cold" memory-mapped files (paged in by the searches that read
them; evictable page cache). float16 halves their bytes (the exact top 10 stayed numpy's float32 top 10);
with the default "cached" placement searches read every vector file through both of the engine's two
mappings of it, so RSS counted the vectors twice ("cold": only filtered searches read the second one).
With 200k chunks this took `serve`'s peak from 2.10 to 1.75 GB RSS, 1.74 to 1.53 GB PSS, search no slower
(bench/serve_rss_bench.py, bench/index_bench.py). Both are fixed when a collection is created: one made
before keeps its float32 "cached" vectors until it is rebuilt.

Compaction (`compact`, retrieval/engines/compaction.py): once a collection's write segment holds more than
`compact_above_mb` on disk, a child process turns a copy of it into finished segments (sparse index and
vectors memory-mapped instead of on the heap) and the copy is swapped in. Writes to that collection wait
for it; searches go on, and wait only for the swap itself (closing one shard, loading the other).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from retrieval.engines import compaction
from retrieval.engines import (RRF_K, CollectionSpec, Compaction, EmptyOrFilter, Fusion, KeywordFilter, PointData,
                               PointId, Record, Scored, Sparse, norm_id)
from retrieval.errors import IndexLockedError

log = logging.getLogger(__name__)
FOLDER = "qdrant-edge"
LEGACY_FOLDER = "qdrant"  # what wikibot wrote before: qdrant-client's local mode
_PLACEHOLDER = "_none"  # qdrant-edge wants at least one vector; vectorless collections get an unused sparse one
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")
_LOCK_NAME = ".wikibot.lock"


def locked_message(path: Path) -> str:
    return (f"The embedded index at {path} is in use by another wikibot process (is `wikibot serve` "
            "running?). Let the running server do the sync (it syncs on its schedule), stop it first, "
            "or set QDRANT_URL to a Qdrant server so that several processes can share one index.")


class _FolderLock:
    """An exclusive, non-blocking lock on the index folder, released when the process ends."""

    def __init__(self, root: Path) -> None:
        self.path = root / _LOCK_NAME
        self._fh: Any = None

    def acquire(self) -> None:
        fh = open(self.path, "a+")
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: the shards' WAL locks still stop a second process
            pass
        except OSError:
            fh.close()
            raise IndexLockedError(locked_message(self.path.parent)) from None
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the file drops the flock
            self._fh = None


class _Gate:
    """One collection's traffic: writers take `write` (a compaction holds it throughout); readers
    count themselves in, and wait only while the shard is being swapped."""

    def __init__(self) -> None:
        self.write = threading.RLock()
        self.cond = threading.Condition()
        self.readers = 0
        self.swapping = False


class EdgeEngine:
    kind: Literal["embedded", "server"] = "embedded"

    def __init__(self, root: Path, compact_above_mb: float = 64.0) -> None:
        import qdrant_edge

        self.qe = qdrant_edge
        self.root = root
        self.location = str(root)
        self.compact_above_mb = compact_above_mb  # 0: never
        self._shards: dict[str, Any] = {}
        self._gates: dict[str, _Gate] = {}
        self._guard = threading.RLock()  # the shard and gate tables; the shards themselves are thread-safe
        self._lock = _FolderLock(root)

    @classmethod
    def open(cls, data_dir: Path, compact_above_mb: float = 64.0) -> "EdgeEngine":
        """Open (creating) DATA_DIR/qdrant-edge, holding the folder's lock."""
        root = Path(data_dir) / FOLDER
        root.mkdir(parents=True, exist_ok=True)
        engine = cls(root, compact_above_mb)
        engine._lock.acquire()
        compaction.recover(root)
        return engine

    # ----- collections ---------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"invalid collection name {name!r}")
        return self.root / name

    def collection_exists(self, name: str) -> bool:
        return (self._dir(name) / "edge_config.json").exists()

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "edge_config.json").exists())

    def create_collection(self, name: str, spec: CollectionSpec) -> None:
        qe = self.qe
        path = self._dir(name)
        with self._guard:
            if self.collection_exists(name):
                raise ValueError(f"collection {name} exists")
            shutil.rmtree(path, ignore_errors=True)  # a half-made folder from a killed run
            vectors = {}
            if spec.dense_dim:
                vectors["dense"] = qe.EdgeVectorParams(size=spec.dense_dim, distance=qe.Distance.Cosine,
                                                       datatype=qe.VectorStorageDatatype.Float16,
                                                       memory=qe.Memory.Cold)
            sparse = {"sparse": compaction.sparse_params(qe)} if spec.sparse else {}
            if not vectors and not sparse:
                sparse = {_PLACEHOLDER: qe.EdgeSparseVectorParams()}
            cfg = qe.EdgeConfig(vectors=vectors or None, sparse_vectors=sparse or None,
                                **compaction.finished_segments(qe))
            shard = _call(qe.EdgeShard.create, str(path), cfg)
            for key in spec.keyword_indexes:
                shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
            self._shards[name] = shard

    def delete_collection(self, name: str) -> None:
        with self._gate(name).write, self._guard:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(self._dir(name), ignore_errors=True)

    def spec(self, name: str) -> CollectionSpec:
        cfg = json.loads((self._dir(name) / "edge_config.json").read_text(encoding="utf-8"))
        dense = (cfg.get("vectors") or {}).get("dense")
        with self._reading(name) as shard:
            info = shard.info()
        return CollectionSpec(dense_dim=int(dense["size"]) if dense else None,
                              sparse="sparse" in (cfg.get("sparse_vectors") or {}),
                              keyword_indexes=tuple(sorted(info.payload_schema)))

    def _shard(self, name: str) -> Any:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        with self._guard:
            if name not in self._shards:
                if not self.collection_exists(name):
                    raise KeyError(f"collection {name} does not exist in {self.root}")
                self._shards[name] = _call(self.qe.EdgeShard.load, str(self._dir(name)))
            return self._shards[name]

    def _gate(self, name: str) -> _Gate:
        gate = self._gates.get(name)
        if gate is None:
            with self._guard:
                gate = self._gates.setdefault(name, _Gate())
        return gate

    @contextmanager
    def _reading(self, name: str) -> Iterator[Any]:
        gate = self._gate(name)
        with gate.cond:
            gate.cond.wait_for(lambda: not gate.swapping)
            gate.readers += 1
        try:
            yield self._shard(name)
        finally:
            with gate.cond:
                gate.readers -= 1
                gate.cond.notify_all()

    @contextmanager
    def _writing(self, name: str) -> Iterator[Any]:
        with self._gate(name).write, self._reading(name) as shard:
            yield shard

    # ----- points --------------------------------------------------------------------------------
    def upsert(self, name: str, points: Sequence[PointData]) -> None:
        if not points:
            return
        qe = self.qe
        pts = []
        for p in points:
            vec: dict[str, Any] = {}
            if p.dense is not None:
                vec["dense"] = list(p.dense)
            if p.sparse is not None:
                vec["sparse"] = qe.SparseVector(indices=list(p.sparse.indices), values=list(p.sparse.values))
            pts.append(qe.Point(p.id, vec, p.payload))
        with self._writing(name) as shard:
            shard.update(qe.UpdateOperation.upsert_points(pts))

    def retrieve(self, name: str, ids: Sequence[PointId], *, with_payload: bool = True,
                 with_vectors: bool = False) -> list[Record]:
        if not ids:
            return []
        with self._reading(name) as shard:
            recs = shard.retrieve(list(ids), with_payload, bool(with_vectors))
        return [_record(r) for r in recs]

    def set_payload(self, name: str, ids: Sequence[PointId], payload: dict[str, Any]) -> None:
        if ids:
            with self._writing(name) as shard:
                shard.update(self.qe.UpdateOperation.set_payload(list(ids), payload))

    def delete(self, name: str, ids: Sequence[PointId]) -> None:
        if ids:
            with self._writing(name) as shard:
                shard.update(self.qe.UpdateOperation.delete_points(list(ids)))

    def scroll(self, name: str, *, limit: int = 1000, offset: PointId | None = None,
               with_vectors: bool = False) -> tuple[list[Record], PointId | None]:
        with self._reading(name) as shard:
            recs, nxt = shard.scroll(self.qe.ScrollRequest(
                offset=offset, limit=limit, with_payload=True, with_vector=bool(with_vectors)))
        return [_record(r) for r in recs], (None if nxt is None else norm_id(nxt))

    def count(self, name: str) -> int:
        with self._reading(name) as shard:
            return int(shard.count(self.qe.CountRequest(exact=True)))

    def query(self, name: str, *, dense: Sequence[float] | None = None, sparse: Sparse | None = None,
              limit: int = 10, where: KeywordFilter | None = None, fusion: Fusion = "rrf",
              empty_or: EmptyOrFilter | None = None) -> list[Scored]:
        qe = self.qe
        flt = None
        must: list[Any] = [qe.FieldCondition(key=k, match=qe.MatchAny(any=list(v)))
                           for k, v in (where or {}).items()]
        must += [qe.Filter(should=[qe.IsEmptyCondition(key=k),
                                   qe.FieldCondition(key=k, match=qe.MatchAny(any=list(v)))])
                 for k, v in (empty_or or {}).items()]
        if must:
            flt = qe.Filter(must=must)
        queries = []
        if dense is not None:
            queries.append(qe.Query.Nearest(list(dense), using="dense"))
        if sparse is not None and sparse.indices:
            queries.append(qe.Query.Nearest(qe.SparseVector(indices=list(sparse.indices),
                                                            values=list(sparse.values)), using="sparse"))
        if not queries:
            return []
        if len(queries) == 1:
            req = qe.QueryRequest(limit=limit, query=queries[0], filter=flt, with_payload=True)
        else:
            req = qe.QueryRequest(
                limit=limit, with_payload=True,
                query=qe.Fusion.Rrf(k=RRF_K) if fusion == "rrf" else qe.Fusion.Dbsf(),
                prefetches=[qe.Prefetch(limit=limit, query=q, filter=flt) for q in queries])
        with self._reading(name) as shard:
            found = shard.query(req)
        return [Scored(norm_id(p.id), float(p.score), dict(p.payload or {})) for p in found]

    def flush(self) -> None:
        with self._guard:
            names = list(self._shards)
        for name in names:
            with self._writing(name) as shard:
                shard.flush()

    # ----- compaction ----------------------------------------------------------------------------
    def compact(self, name: str) -> Compaction | None:
        """Finish the collection's write segment once it holds more than `compact_above_mb` (else None).

        Runs in the caller's thread for seconds to tens of seconds, but off the GIL: the optimizer runs
        in a child process on a copy. Writes to this collection wait meanwhile; searches do not.
        Raises RuntimeError when the child fails (the collection is then unchanged).
        """
        path = self._dir(name)
        if not self.compact_above_mb or not self.collection_exists(name) or not self.spec(name).sparse:
            return None  # only a sparse index lives on the heap
        gate = self._gate(name)
        with gate.write:
            with self._reading(name) as shard:
                shard.flush()  # the segment's files hold what the WAL holds
            held = compaction.appendable_mb(path)
            if held <= self.compact_above_mb:
                return None
            t0 = time.perf_counter()
            work = self.root / compaction.WORK / name
            report = compaction.compact_in_child(path, work)
            self._swap(name, work)
            done = Compaction(name, round(held, 1), round(time.perf_counter() - t0, 2), report["copy_s"],
                              report["optimize_s"], report["segments"])
        log.info("compacted %s: %.0f MB of write segment in %.1f s (copy %.1f s, optimize %.1f s), %d segments",
                 name, held, done.seconds, done.copy_s, done.optimize_s, done.segments)
        return done

    def _swap(self, name: str, work: Path) -> None:
        """Put the finished copy in the collection's place; searches wait only for this step."""
        path, retired = self._dir(name), self.root / compaction.RETIRED / name
        gate = self._gate(name)
        with gate.cond:
            gate.swapping = True
            gate.cond.wait_for(lambda: gate.readers == 0)
        try:
            with self._guard:
                old = self._shards.pop(name, None)
                if old is not None:
                    old.close()
                shutil.rmtree(retired, ignore_errors=True)
                retired.parent.mkdir(parents=True, exist_ok=True)
                path.rename(retired)
                work.rename(path)
                try:
                    self._shards[name] = _call(self.qe.EdgeShard.load, str(path))
                except Exception:  # the copy does not open: back to the shard as it was
                    shutil.rmtree(path, ignore_errors=True)
                    retired.rename(path)
                    self._shards[name] = _call(self.qe.EdgeShard.load, str(path))
                    raise
        finally:
            with gate.cond:
                gate.swapping = False
                gate.cond.notify_all()
        shutil.rmtree(retired, ignore_errors=True)
        for folder in (retired.parent, work.parent):
            try:
                folder.rmdir()
            except OSError:  # another collection's compaction uses it
                pass
        _release_freed_memory()

    def close(self) -> None:
        with self._guard:
            gates = list(self._gates.values())
        for gate in gates:  # a compaction under way finishes (or fails) first
            gate.write.acquire()
        try:
            with self._guard:
                for shard in self._shards.values():
                    try:
                        shard.close()
                    except Exception:  # pragma: no cover - closing twice
                        pass
                self._shards.clear()
                self._lock.release()
        finally:
            for gate in gates:
                gate.write.release()


def _release_freed_memory() -> None:
    """Hand the closed shard's heap back to the system (glibc keeps freed memory otherwise)."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def is_legacy_folder(path: Path) -> bool:
    """A folder qdrant-client's local mode wrote (an older wikibot's embedded index)."""
    return (path / "meta.json").exists() or (path / "collection").is_dir()


def _call(fn: Any, *args: Any) -> Any:
    """Open or create a shard, turning the WAL lock of another process into our clear message."""
    try:
        return fn(*args)
    except Exception as exc:
        if "WouldBlock" in str(exc) or "lock" in str(exc).lower():
            raise IndexLockedError(locked_message(Path(args[0]).parent)) from None
        raise


def _record(r: Any) -> Record:
    vec = r.vector if isinstance(r.vector, dict) else {}
    sp = vec.get("sparse")
    return Record(norm_id(r.id), dict(r.payload or {}),
                  dense=list(vec["dense"]) if vec.get("dense") is not None else None,
                  sparse=Sparse(list(sp.indices), [float(x) for x in sp.values]) if sp is not None else None)


__all__ = ["EdgeEngine", "FOLDER", "LEGACY_FOLDER", "is_legacy_folder", "locked_message"]
