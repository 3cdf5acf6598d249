"""The platform-neutral page model that every source produces and the index consumes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

import yaml


@dataclass(frozen=True)
class Page:
    id: str
    title: str
    body: str  # markdown
    space: str = "default"
    path: tuple[str, ...] = ()  # breadcrumb: parent titles, top first
    url: str = ""
    edited_at: datetime | None = None
    source_meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # who may read the page when that is narrower than its space: opaque principal strings the source
    # and the asker's resolver agree on. Empty: everyone who may read the space. Not part of
    # `content_hash`: a change of readers rewrites payloads, it re-embeds nothing.
    readers: tuple[str, ...] = field(default=(), compare=False, hash=False)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything the index stores for this page changes."""
        h = hashlib.sha256()
        for part in (self.id, self.title, self.space, "/".join(self.path), self.url, self.body):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()[:32]


NOBODY = "!nobody"  # a reader no asker ever is: a restricted page whose readers are unknown (fail closed)

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


def parse_markdown_page(page_id: str, text: str, default_space: str = "default") -> Page:
    """A markdown file, front matter optional (title, space, path, url, edited)."""
    meta: dict[str, object] = {}
    m = _FRONT_MATTER.match(text)
    if m:
        try:
            loaded = yaml.safe_load(m.group(1))
        except yaml.YAMLError as exc:
            raise ValueError(f"page {page_id}: bad front matter: {exc}") from None
        if isinstance(loaded, dict):
            meta = loaded
        text = text[m.end():]
    title = str(meta.get("title") or "")
    if not title:
        h1 = _H1.search(text)
        title = h1.group(1).strip() if h1 else page_id
    raw_path = meta.get("path") or ()
    path = tuple(str(p) for p in raw_path) if isinstance(raw_path, (list, tuple)) else (str(raw_path),)
    edited = meta.get("edited")
    edited_at: datetime | None = None
    if isinstance(edited, datetime):
        edited_at = edited
    elif isinstance(edited, str) and edited:
        edited_at = datetime.fromisoformat(edited)
    return Page(
        id=page_id,
        title=title,
        body=text.strip("\n") + "\n",
        space=str(meta.get("space") or default_space),
        path=path,
        url=str(meta.get("url") or ""),
        edited_at=edited_at,
    )


def read_markdown_folder(folder: Path, default_space: str = "default", url_base: str = "") -> Iterator[Page]:
    """Every `*.md` file of a folder (recursively) as a page; the file name without `.md` is its id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of markdown pages")
    for file in sorted(folder.rglob("*.md")):
        page = parse_markdown_page(file.stem, file.read_text(encoding="utf-8"), default_space)
        if not page.url:
            base = url_base or folder.resolve().as_uri() + "/"
            page = Page(**{**page.__dict__, "url": base + file.relative_to(folder).as_posix()})
        yield page
