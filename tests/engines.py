"""Both engines for tests: the embedded Qdrant engine, and qdrant-client's local mode standing in for a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

ENGINE_KINDS = ("edge", "server")


def open_test_engine(kind: Literal["edge", "server"] | str, path: Path) -> Any:
    """An engine whose data lives under `path` (reopening the same path sees the same data)."""
    if kind == "edge":
        from retrieval.engines.edge import EdgeEngine

        return EdgeEngine.open(Path(path))
    from qdrant_client import QdrantClient

    from retrieval.engines.server import ServerEngine

    folder = Path(path) / "qdrant-server"
    folder.mkdir(parents=True, exist_ok=True)
    return ServerEngine(QdrantClient(path=str(folder)), f"local mode at {folder}")
