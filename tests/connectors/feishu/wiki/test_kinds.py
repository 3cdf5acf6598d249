"""The whole wiki, not only docx: sheets, Bitable bases, uploaded files and legacy docs, synced from
the fake Feishu (real lark-oapi on the wire) into a real index, found with the right page URL."""

from __future__ import annotations

import pytest

from connectors.feishu.wiki.files import FileLimits
from tests.connectors.feishu.wiki.filegen import make_docx, make_pdf, make_pptx, make_xlsx
from tests.connectors.feishu.wiki.fixtures import *
from tests.connectors.feishu.wiki.fixtures import OTHER_SPACE, SPACE, URL_BASE, run_sync, snapshot

ONCALL = [{"sheet_id": "a1b2c3", "title": "值班表", "rows": [
    ["日期", "值班人", "手机", "备注"],
    ["周一", "韩梅梅", 13800001111, None],
    ["周三", "李雷", "13900002222", [{"type": "text", "text": "负责 "}, {"type": "url", "text": "GPU 告警",
                                                                  "link": "https://ops.example.com/gpu"}]],
    [None, None, None, None],
]}, {"sheet_id": "d4e5f6", "title": "备件", "rows": [["物品", "数量"], ["A100 显卡", 6]]}]

FIELDS = [{"field_name": "问题", "type": 1}, {"field_name": "答案", "type": 1}, {"field_name": "标签", "type": 4},
          {"field_name": "负责人", "type": 11}, {"field_name": "更新日期", "type": 5}, {"field_name": "已审核", "type": 7}]


def faq_records(n: int) -> list[dict]:
    recs = [{"fields": {"问题": f"Q{i}"}} for i in range(n)]
    recs.append({"fields": {
        "问题": [{"type": "text", "text": "VPN 连不上怎么办"}],
        "答案": [{"type": "text", "text": "先检查 WireGuard 客户端的系统时间，再到"},
                 {"type": "url", "text": "自助门户", "link": "https://vpn.example.com"}, {"type": "text", "text": "重新生成配置。"}],
        "标签": ["网络", "VPN"], "负责人": [{"id": "ou_1", "name": "王工", "email": "w@example.com"}],
        "更新日期": 1_717_200_000_000, "已审核": True}})
    return recs


@pytest.fixture
def kinds(wiki):
    """One node of every readable kind, plus two files that cannot be indexed."""
    files = {
        "handbook.pdf": make_pdf([["Expense handbook", "Taxi receipts must be filed within 30 days."],
                                  ["Hotels", "The nightly hotel cap in Shanghai is 900 CNY."]]),
        "onboarding.docx": make_docx("入职指南", ["新同事第一天到前台领取门禁卡和笔记本电脑。"],
                                     [["物品", "领取地点"], ["显示器", "三楼仓库"]]),
        "roadmap.pptx": make_pptx([("下季度路线图", "上线检索增强问答机器人", "备注：预算需要财务审批")]),
        "inventory.xlsx": make_xlsx({"机房库存": [["设备", "机柜", "数量"], ["交换机", "R12", 4], ["光模块", "R07", 96]]}),
        "notes.md": "# 部署笔记\n\n## 回滚\n\n回滚时在 Argo CD 里选择上一个版本并点击 Sync。\n".encode(),
        "readme.txt": "打印机在五楼东侧，驱动放在共享盘 /it/drivers 下。\n".encode(),
    }
    ids = {"oncall": wiki.sheet(SPACE, "oncall", "值班与备件", ONCALL),
           "faq": wiki.bitable(SPACE, "faq", "IT 常见问题", [{"table_id": "tblFAQ", "name": "问答", "fields": FIELDS,
                                                               "records": faq_records(3)}]),
           "legacy": wiki.legacy_doc(SPACE, "legacy", "旧版报销说明", "2019 年以前的发票请邮寄到财务部二楼。\n")}
    wiki.page(SPACE, "files", "文件区。\n", title="文件")
    for i, (name, data) in enumerate(files.items()):
        ids[name] = wiki.file(SPACE, f"files/f{i}", name, data)
    ids["broken.pdf"] = wiki.file(SPACE, "files/broken", "broken.pdf", b"%PDF-1.4\n this is not a pdf at all")
    ids["photo.png"] = wiki.file(SPACE, "files/photo", "photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    ids["big.pdf"] = wiki.file(SPACE, "files/big", "big.pdf", make_pdf([["too big"]], padding_bytes=300_000))
    return ids


@pytest.fixture
def capped(make_source):
    return make_source(file_limits=FileLimits(max_bytes=200_000, timeout_seconds=30))


def top(index, query, page_id):
    hits = index.search(query, k=5)
    return next((h for h in hits if h.page_id == page_id), None)


def test_every_kind_is_indexed_and_found_with_its_page_url(fake, index, capped, kinds):
    report = run_sync(index, capped)
    assert report.ok and report.added == 10 and not report.failed
    assert {k: v["added"] for k, v in report.by_kind.items()} == {"sheet": 1, "bitable": 1, "doc": 1, "docx": 1,
                                                                  "file": 6}
    oncall = top(index, "周三谁值班 手机号", kinds["oncall"])
    assert oncall is not None and oncall.url == URL_BASE + "oncall" and oncall.heading_path[-1] == "值班表"
    assert "日期: 周三；值班人: 李雷；手机: 13900002222；备注: 负责 [GPU 告警](https://ops.example.com/gpu)" in oncall.text
    spare = top(index, "A100 显卡 备件 数量", kinds["oncall"])
    assert spare is not None and "物品: A100 显卡；数量: 6" in spare.text
    vpn = top(index, "VPN 连不上 WireGuard", kinds["faq"])
    assert vpn is not None and vpn.url == URL_BASE + "faq"
    assert "标签: 网络、VPN；负责人: 王工；更新日期: 2024-06-01；已审核: 是" in vpn.text
    legacy = top(index, "2019 年以前的发票", kinds["legacy"])
    assert legacy is not None and legacy.url == URL_BASE + "legacy"
    for query, name, expect in [("nightly hotel cap Shanghai", "handbook.pdf", "900 CNY"),
                                ("第一天 门禁卡 笔记本电脑", "onboarding.docx", "门禁卡"),
                                ("显示器 领取地点", "onboarding.docx", "三楼仓库"),
                                ("路线图 检索增强问答机器人", "roadmap.pptx", "检索增强问答"),
                                ("光模块 机柜 数量", "inventory.xlsx", "设备: 光模块；机柜: R07；数量: 96"),
                                ("Argo CD 回滚", "notes.md", "上一个版本"),
                                ("打印机 驱动", "readme.txt", "五楼东侧")]:
        hit = top(index, query, kinds[name])
        assert hit is not None and expect in hit.text, (name, [h.text for h in index.search(query, k=3)])
        assert hit.url.startswith(URL_BASE + "f") and hit.path == ("文件",)


def test_bitable_records_are_read_page_by_page(fake, index, source, wiki):
    base = wiki.bitable(SPACE, "faq", "IT 常见问题", [{"table_id": "tblFAQ", "name": "问答", "fields": FIELDS,
                                                     "records": faq_records(520)}])
    assert run_sync(index, source).added == 1
    assert fake.count("/tables/tblFAQ/records") == 2  # 521 records, 500 a page
    texts = "\n".join(c["text"] for c in snapshot(index)[1].values())
    assert "问题: Q0" in texts and "问题: Q519" in texts  # first and second result page
    last = top(index, "VPN 连不上怎么办", base)  # the last record, on the second page
    assert last is not None and "答案: 先检查 WireGuard" in last.text


def test_files_that_cannot_be_read_are_skipped_with_the_reason_and_not_fetched_again(fake, index, capped, kinds,
                                                                                    wiki):
    report = run_sync(index, capped)
    reasons = {s["page"]: s["reason"] for s in report.skipped}
    assert {s["type"] for s in report.skipped} == {"file"} and report.ok
    assert "not a readable PDF" in reasons["broken.pdf"]
    assert "file type .png is not read" in reasons["photo.png"]
    assert "cap" in reasons["big.pdf"] and "0.2 MB" in reasons["big.pdf"]
    assert report.by_kind["file"]["skipped"] == 3
    for name in ("broken.pdf", "photo.png", "big.pdf"):
        assert kinds[name] not in index.page_states()
    downloads = fake.count("/download")
    again = run_sync(index, capped)
    assert fake.count("/download") == downloads  # remembered: nothing downloaded again
    assert {s["page"]: s["reason"] for s in again.skipped} == reasons
    wiki.file(SPACE, "files/broken", "broken.pdf", make_pdf([["Repaired", "The fixed handbook says 42."]]))
    fixed = run_sync(index, capped)
    assert fixed.added == 1 and fake.count("/download") == downloads + 1
    assert "broken.pdf" not in {s["page"] for s in fixed.skipped}
    assert top(index, "fixed handbook 42", kinds["broken.pdf"]) is not None


def test_a_file_that_becomes_unreadable_loses_its_old_version(index, capped, wiki):
    token = wiki.file(SPACE, "guide", "guide.txt", "访客需要提前一天登记。\n".encode())
    assert run_sync(index, capped).added == 1
    wiki.file(SPACE, "guide", "guide.txt", b"\xff\xfe\x00" * 100_000)  # now over the cap
    report = run_sync(index, capped)
    assert [s["id"] for s in report.skipped] == [token] and token not in index.page_states()
    assert top(index, "访客 登记", token) is None


def test_a_resync_without_changes_downloads_and_embeds_nothing_for_any_kind(fake, index, capped, kinds):
    run_sync(index, capped)
    before = snapshot(index)
    counts = {p: fake.count(p) for p in ("/sheets/query", "/values/", "/records", "/download", "/raw_content",
                                         "/blocks")}
    index.embedder.passages = 0
    report = run_sync(index, capped)
    assert (report.added, report.updated, report.removed, report.chunks_embedded) == (0, 0, 0, 0)
    assert report.unchanged == 10 and index.embedder.passages == 0
    assert {p: fake.count(p) for p in counts} == counts
    assert report.by_kind["file"] == {"listed": 6, "added": 0, "updated": 0, "unchanged": 6, "skipped": 3,
                                      "failed": 0}
    assert snapshot(index) == before


def test_edits_deletions_and_moves_propagate_for_every_kind(fake, index, make_source, kinds, wiki):
    wiki.space(OTHER_SPACE, "Archive")
    source = make_source((SPACE, OTHER_SPACE), file_limits=FileLimits(max_bytes=200_000))
    run_sync(index, source)
    edited = [dict(s) for s in ONCALL]
    edited[1] = {**edited[1], "rows": [["物品", "数量"], ["A100 显卡", 2], ["H100 显卡", 8]]}
    wiki.sheet(SPACE, "oncall", "值班与备件", edited)
    wiki.delete(SPACE, "faq")
    wiki.delete(SPACE, "legacy")
    wiki.move(SPACE, "files/f0", OTHER_SPACE)  # handbook.pdf, to the other space
    values = fake.count("/values/")
    report = run_sync(index, source)
    assert report.ok and (report.updated, report.removed) == (2, 2)
    assert report.by_kind["sheet"]["updated"] == 1 and report.by_kind["file"]["updated"] == 1
    assert fake.count("/values/") == values + 2  # the edited spreadsheet only (two sheets)
    states = index.page_states()
    assert kinds["faq"] not in states and kinds["legacy"] not in states
    h100 = top(index, "H100 显卡 数量", kinds["oncall"])
    assert h100 is not None and "H100 显卡；数量: 8" in h100.text
    moved = top(index, "nightly hotel cap Shanghai", kinds["handbook.pdf"])
    assert moved is not None and moved.space == OTHER_SPACE and moved.path == ()


def test_rate_limits_on_sheets_bitable_and_downloads_are_waited_out(fake, index, make_source, wiki):
    sheet = wiki.sheet(SPACE, "s", "表", [{"sheet_id": "s1", "title": "S", "rows": [["键", "值"], ["端口", "8443"]]}])
    base = wiki.bitable(SPACE, "b", "库", [{"table_id": "tblB", "name": "T", "fields": FIELDS[:2],
                                             "records": faq_records(1)}])
    wiki.file(SPACE, "f", "f.txt", "内容：端口映射。\n".encode())
    fake.inject(f"/spreadsheets/{sheet}/values/", times=1, headers={"x-ogw-ratelimit-reset": "1"})
    fake.inject(f"/apps/{base}/tables", times=1, status=400)  # 400 + 99991400, as older APIs answer
    fake.inject("/download", times=1, headers={"x-ogw-ratelimit-reset": "1"})
    report = run_sync(index, make_source())
    assert report.ok and report.added == 3
    for part in (f"/spreadsheets/{sheet}/values/", "/download"):
        times = [t for _, p, t in fake.requests if part in p]
        assert len(times) == 2 and times[1] - times[0] >= 1.0


def test_a_sheet_that_cannot_be_read_fails_alone_and_keeps_its_old_version(fake, index, capped, kinds, wiki):
    run_sync(index, capped)
    fake.wiki.fail_docs[kinds["oncall"]] = (500, 1, "internal error")
    assert run_sync(index, capped).ok  # unchanged: not even asked for
    wiki.sheet(SPACE, "oncall", "值班与备件", [{**ONCALL[0], "rows": ONCALL[0]["rows"] + [["周五", "小明"]]}, ONCALL[1]])
    report = run_sync(index, capped)
    assert not report.ok and [f["id"] for f in report.failed] == [kinds["oncall"]]
    assert report.by_kind["sheet"]["failed"] == 1 and "HTTP 500" in report.failed[0]["reason"]
    assert top(index, "周三谁值班 手机号", kinds["oncall"]) is not None  # the old version stays


def _block(doc, bid, kind, key, payload, children=None):
    b = {"block_id": bid, "block_type": kind, "parent_id": doc, key: payload}
    return {**b, "children": children} if children else b


def _text(*elements):
    return {"elements": list(elements), "style": {}}


def _run(content):
    return {"text_run": {"content": content, "text_element_style": {}}}


def test_docx_pages_keep_embedded_sheets_bitables_images_mentions_iframes_and_synced_blocks(fake, index, source,
                                                                                           wiki):
    from urllib.parse import quote

    sheet = wiki.sheet(SPACE, "ports", "端口表", [{"sheet_id": "p1", "title": "端口", "rows": [
        ["服务", "端口"], ["Grafana", 3000], ["内部网关", 8443]]}])
    base = wiki.bitable(SPACE, "owners", "负责人", [{"table_id": "tblOwn", "name": "系统", "fields": FIELDS[:2],
                                                   "records": [{"fields": {"问题": "告警平台", "答案": "赵六负责"}}]}])
    src = wiki.doc_id("source")
    wiki.blocks(SPACE, "source", "密码规范", [
        {"block_id": src, "block_type": 1, "parent_id": "", "page": _text(_run("密码规范")), "children": ["srcblk"]},
        _block(src, "srcblk", 49, "source_synced", {"align": 1}, ["srctxt"]),
        {**_block("srcblk", "srctxt", 2, "text", _text(_run("服务器密码每 90 天更换一次。"))), "parent_id": "srcblk"}])
    doc = wiki.doc_id("infra")
    kids = ["t1", "sh", "bt", "gone", "img", "ifr", "ref"]
    wiki.blocks(SPACE, "infra", "基础设施总览", [
        {"block_id": doc, "block_type": 1, "parent_id": "", "page": _text(_run("基础设施总览")), "children": kids},
        _block(doc, "t1", 2, "text", _text(_run("模型细节见 "), {"mention_doc": {
            "token": "doxcnLORA", "obj_type": 22, "title": "LoRA 微调指南",
            "url": quote("https://example.feishu.cn/wiki/lora", safe="")}})),
        _block(doc, "sh", 30, "sheet", {"token": f"{sheet}_p1", "row_size": 3, "column_size": 2}),
        _block(doc, "bt", 18, "bitable", {"token": f"{base}_tblOwn", "view_type": 1}),
        _block(doc, "gone", 30, "sheet", {"token": "shtcnDELETED_x1", "row_size": 1, "column_size": 1}),
        _block(doc, "img", 27, "image", {"token": "boxcnIMG", "width": 800, "height": 600, "align": 2,
                                         "caption": {"content": "机房 B2 布线示意图"}}),
        _block(doc, "ifr", 26, "iframe", {"component": {"iframe_type": 1,
                                                        "url": quote("https://www.example.com/dash", safe="")}}),
        _block(doc, "ref", 50, "reference_synced", {"source_document_id": src, "source_block_id": "srcblk"}),
    ])
    report = run_sync(index, source)
    assert report.ok and report.added == 4
    chunks = snapshot(index)[1]
    body = "\n".join(c["text"] for c in sorted(chunks.values(), key=lambda c: c["start"]) if c["page_id"] == doc)
    assert "模型细节见 [LoRA 微调指南](https://example.feishu.cn/wiki/lora)" in body
    assert "| 服务 | 端口 |" in body and "| 内部网关 | 8443 |" in body  # the embedded sheet, as a table
    assert "| 告警平台 | 赵六负责 |" in body  # the embedded Bitable table
    assert f"[图片：机房 B2 布线示意图]({URL_BASE}infra)" in body
    assert "<https://www.example.com/dash>" in body
    assert "服务器密码每 90 天更换一次。" in body  # the synced block, read from its source document
    hit = top(index, "内部网关 端口", doc)
    assert hit is not None and hit.url == URL_BASE + "infra"
    blocks, metas = fake.count(f"/documents/{doc}/blocks"), fake.count("/metas/batch_query")
    assert run_sync(index, source).unchanged == 4 and fake.count(f"/documents/{doc}/blocks") == blocks
    assert fake.count("/metas/batch_query") == metas + 1  # the embedded objects' edit times, in one call
    wiki.sheet(SPACE, "ports", "端口表", [{"sheet_id": "p1", "title": "端口", "rows": [
        ["服务", "端口"], ["Grafana", 3000], ["内部网关", 9443]]}])  # an edit inside the embedded sheet only
    report = run_sync(index, source)
    assert report.updated == 2 and fake.count(f"/documents/{doc}/blocks") == blocks + 1  # the sheet and the page
    hit = top(index, "内部网关 端口", doc)
    assert hit is not None and "| 内部网关 | 9443 |" in hit.text


def test_a_file_that_takes_too_long_is_skipped_with_the_reason(fake, index, make_source, wiki):
    token = wiki.file(SPACE, "slow", "slow.pdf", make_pdf([["slow"]], padding_bytes=3_000_000))
    report = run_sync(index, make_source(file_limits=FileLimits(max_bytes=10_000_000, timeout_seconds=0.001)))
    assert report.ok and [(s["id"], s["type"]) for s in report.skipped] == [(token, "file")]
    assert "took longer than" in report.skipped[0]["reason"] or "too long" in report.skipped[0]["reason"]
