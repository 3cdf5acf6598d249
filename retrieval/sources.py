"""What a wiki source is to the sync: a cheap listing of page stubs, and a page fetched on demand.

Every source (the Feishu wiki, a folder of markdown pages) speaks this contract, and
`retrieval.sync` keeps the index in step with any of them the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from retrieval.pages import Page, read_markdown_folder


@dataclass(frozen=True)
class PageStub:
    """What a listing knows about a page without downloading it."""

    id: str
    title: str
    space: str = "default"
    path: tuple[str, ...] = ()
    url: str = ""
    edited_at: datetime | None = None
    version: str = ""  # the source's own change marker (e.g. edit time + object token)
    kind: str = "page"  # the source's type name (docx, sheet, ...)
    skip_reason: str = ""  # non-empty: listed but not indexable (why, in words); reported, never fetched

    @property
    def fingerprint(self) -> str:
        """Changes whenever the page as indexed could have changed, body aside."""
        h = hashlib.sha256()
        for part in (self.id, self.title, self.space, "/".join(self.path), self.url, self.version,
                     self.edited_at.isoformat() if self.edited_at else ""):
            h.update(part.encode("utf-8") + b"\x00")
        return h.hexdigest()[:32]


class PageSkipped(Exception):
    """Raised by `fetch_page` for a page that is listed but cannot be indexed as it is now (a file too
    big or in a format nobody can read). The sync reports it as skipped with `reason`, never as failed,
    drops any older indexed version, and does not fetch it again until its stub changes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Listing:
    stubs: list[PageStub]
    complete: bool = True
    errors: list[str] = field(default_factory=list)


class WikiSource(Protocol):
    source_id: str  # stamped on every page it produces; only pages carrying it are ever removed

    def list_pages(self) -> Listing: ...

    def fetch_page(self, stub: PageStub) -> Page: ...  # may raise PageSkipped

    # Optional: `refine_versions(stubs, recorded_meta_by_page_id) -> stubs`, called after listing, may
    # add to a stub's version what only the last fetch knew (its `source_meta`); a page fetched with
    # `source_meta["version"]` is recorded under that version.


class MarkdownFolderSource:
    """A folder of markdown pages (the bundled sample wiki, `wikibot index PATH`, tests and benchmarks).

    Reading the files is cheap next to embedding them, so the listing parses every page and the
    stub's version is the page's content hash: an unchanged file costs no embedding.
    """

    def __init__(self, folder: Path, url_base: str = "") -> None:
        self.folder = Path(folder)
        self.url_base = url_base
        self.source_id = f"local:{self.folder.resolve()}"
        self._pages: dict[str, Page] = {}

    def list_pages(self) -> Listing:
        self._pages = {p.id: p for p in read_markdown_folder(self.folder, url_base=self.url_base)}
        return Listing([PageStub(p.id, p.title, p.space, p.path, p.url, p.edited_at, version=p.content_hash,
                                 kind="markdown") for p in self._pages.values()])

    def fetch_page(self, stub: PageStub) -> Page:
        return replace(self._pages[stub.id], source_meta={"kind": "markdown"})
