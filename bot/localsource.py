"""Index a folder of markdown pages (the shape of the sample wiki, tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from retrieval.index import WikiIndex
from retrieval.pages import read_markdown_folder


@dataclass(frozen=True)
class IndexReport:
    added: int
    updated: int
    unchanged: int
    removed: int
    chunks_embedded: int
    seconds: float


def index_folder(index: WikiIndex, folder: Path, *, url_base: str = "", full: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> IndexReport:
    """Make the index hold exactly the folder's pages: new and changed ones written, vanished ones removed."""
    import time

    start = time.perf_counter()
    source = f"local:{Path(folder).resolve()}"
    pages = [replace(p, source_meta={"source": source}) for p in read_markdown_folder(folder, url_base=url_base)]
    states = index.page_states()
    added = updated = unchanged = embedded = 0
    for i, page in enumerate(pages):
        result = index.upsert_page(page, force=full)
        embedded += result.chunks_embedded
        if not result.changed:
            unchanged += 1
        elif page.id in states and states[page.id].rev:
            updated += 1
        else:
            added += 1
        if progress:
            progress(i + 1, len(pages))
    current = {p.id for p in pages}
    gone = [pid for pid, st in states.items() if st.meta.get("source") == source and pid not in current]
    removed = index.remove_pages(gone)
    return IndexReport(added, updated, unchanged, removed, embedded, time.perf_counter() - start)
