"""Copy collections between engines, vectors included, nothing re-embedded.

Two uses: `wikibot copy-index --to URL` (outgrowing one machine: the embedded index into a Qdrant
server), and carrying an older wikibot's local-mode folder over to the embedded engine once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from retrieval.engines import Engine, PointData
from retrieval.errors import IndexCopyError, LegacyIndexError

log = logging.getLogger(__name__)
CopyProgress = Callable[[str, int], None]  # collection, points copied so far


@dataclass(frozen=True)
class CopyReport:
    counts: dict[str, int]  # points copied per collection


def copy_collections(src: Engine, dst: Engine, names: Sequence[str], *, replace: bool = False, batch: int = 256,
                     progress: CopyProgress | None = None) -> CopyReport:
    """Copy each named collection of `src` into `dst` with its vectors, payloads and payload indexes.

    A collection already in `dst` stops the copy before anything is written, unless `replace`.
    """
    missing = [n for n in names if not src.collection_exists(n)]
    if missing:
        raise IndexCopyError(f"nothing to copy: {', '.join(missing)} not found in {src.location}")
    clash = [n for n in names if dst.collection_exists(n)]
    if clash and not replace:
        raise IndexCopyError(f"{dst.location} already has {', '.join(clash)}; pass --replace to overwrite them")
    counts: dict[str, int] = {}
    for name in names:
        dst.delete_collection(name)
        dst.create_collection(name, src.spec(name))
        done, offset = 0, None
        while True:
            recs, offset = src.scroll(name, limit=batch, offset=offset, with_vectors=True)
            dst.upsert(name, [PointData(r.id, r.payload, r.dense, r.sparse) for r in recs])
            done += len(recs)
            if progress:
                progress(name, done)
            if offset is None:
                break
        if dst.count(name) != src.count(name):
            raise IndexCopyError(f"copy of {name} is incomplete: {dst.count(name)} of {src.count(name)} points")
        counts[name] = done
    return CopyReport(counts)


def migrate_legacy(legacy: Path, dst: Engine) -> CopyReport:
    """Carry an older wikibot's index (qdrant-client local mode, DATA_DIR/qdrant) over, then set it aside.

    Cheap and safe: vectors are copied, nothing is re-embedded, and the old folder is renamed, not
    deleted. If it cannot be done, the user is told what to run instead.
    """
    from qdrant_client import QdrantClient

    from retrieval.engines.server import ServerEngine

    log.warning("carrying the index of an older wikibot over from %s (once)", legacy)
    try:
        client = QdrantClient(path=str(legacy))
    except Exception as exc:
        raise LegacyIndexError(_legacy_message(legacy, dst, exc)) from None
    src = ServerEngine(client, str(legacy))
    try:
        report = copy_collections(src, dst, src.collections(), replace=True)
    except Exception as exc:
        for name in dst.collections():
            dst.delete_collection(name)
        raise LegacyIndexError(_legacy_message(legacy, dst, exc)) from None
    finally:
        src.close()
    aside = legacy.with_name(legacy.name + ".old-local-mode")
    legacy.rename(aside)
    log.warning("index carried over (%s); the old folder is kept as %s, delete it when satisfied",
                ", ".join(f"{k}: {v}" for k, v in report.counts.items()), aside)
    return report


def _legacy_message(legacy: Path, dst: Engine, exc: BaseException) -> str:
    why = "it is in use by another process (an older `wikibot serve`?)" if "already accessed" in str(exc) \
        else f"{type(exc).__name__}: {exc}"
    return (f"{legacy} holds an index written by an older wikibot (qdrant-client local mode), and it could not be "
            f"carried over to the embedded engine at {dst.location}: {why}. Stop any older wikibot, or move "
            f"{legacy} away and rebuild the index from the wiki with `wikibot sync --full` "
            "(or `wikibot index PATH --rebuild`).")


__all__ = ["copy_collections", "migrate_legacy", "CopyReport"]


def copy_index(src: Engine, dst: Engine, prefix: str = "wikibot", *, replace: bool = False,
               progress: CopyProgress | None = None) -> CopyReport:
    """Copy one index (chunks, pages, meta, and the question log if there is one) between engines."""
    names = [f"{prefix}_{part}" for part in ("chunks", "pages", "meta")]
    if src.collection_exists(f"{prefix}_questions"):
        names.append(f"{prefix}_questions")
    return copy_collections(src, dst, names, replace=replace, progress=progress)


def copy_embedded_index_to(data_dir: Path, url: str, api_key: str = "", prefix: str = "wikibot", *,
                           replace: bool = False, progress: CopyProgress | None = None) -> CopyReport:
    """`wikibot copy-index --to URL`: the embedded index under `data_dir` into the Qdrant server at `url`."""
    from retrieval.engines.edge import FOLDER, EdgeEngine
    from retrieval.engines.server import ServerEngine

    if not (Path(data_dir) / FOLDER).is_dir():
        raise IndexCopyError(f"there is no embedded index under {data_dir} to copy")
    src = EdgeEngine.open(Path(data_dir))
    try:
        dst = ServerEngine.connect(url, api_key)
        try:
            try:
                dst.collections()
            except Exception as exc:
                raise IndexCopyError(f"cannot reach the Qdrant server at {url}: {type(exc).__name__}: {exc}") from None
            return copy_index(src, dst, prefix, replace=replace, progress=progress)
        finally:
            dst.close()
    finally:
        src.close()


__all__ += ["copy_index", "copy_embedded_index_to"]
