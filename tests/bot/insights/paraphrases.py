"""Paraphrases we wrote of some of eval-dev's unanswerable questions (by their id), for the gap report.

Each id's question (read from ../shared/eval-dev/unanswerable.jsonl) and its paraphrases are one
missing topic; different ids are different topics.
"""

from __future__ import annotations

import json
from pathlib import Path

EVAL_DEV = Path(__file__).resolve().parents[3].parent / "shared" / "eval-dev"

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "dev-u001": ("东关街有哪些全国重点文物保护单位？", "东关街上哪些景点是国家级重点文物？"),
    "dev-u005": ("西班牙语是怎么定义的？", "什么叫西班牙语？"),
    "dev-u006": ("Which corporation owns the Otis Elevator Company today?",
                 "Otis Elevator is now part of which big company?"),
    "dev-u009": ("猴面包树的果实大概有多长？", "非洲猴面包树结的果子一般多少厘米长？"),
    "dev-u012": ("首钢改制成国有独资公司以后改名叫什么了？", "首钢总公司改制后公司名称有什么变化？"),
    "dev-u015": ("占旭刚在亚特兰大奥运会上举起了多少公斤夺冠？", "1996年亚特兰大奥运会占旭刚的夺冠成绩是多少？"),
    "dev-u019": ("山东女子学院的图书馆有多少藏书？", "山东女子学院图书馆一共收藏了多少册图书？"),
    "dev-u023": ("Does an object with higher emissivity look brighter in an infrared image?",
                 "In thermal imaging, how does a high-emissivity object compare to a low-emissivity one?"),
    "dev-u025": ("Who founded one of the earliest US settlements in Florida?",
                 "Which person set up one of the first American settlements in Florida?"),
    "dev-u030": ("四泉圣嘉禄堂的设计者是谁？", "谁设计了四泉圣嘉禄堂？"),
}


def unanswerable() -> dict[str, str]:
    """eval-dev's unanswerable questions by id (read in place, not copied)."""
    out = {}
    with open(EVAL_DEV / "unanswerable.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out[d["id"]] = d["question"]
    return out


def labelled_questions() -> list[tuple[str, str]]:
    """(topic id, question) for every unanswerable question and every paraphrase."""
    out = [(qid, q) for qid, q in unanswerable().items()]
    for qid, more in PARAPHRASES.items():
        out.extend((qid, q) for q in more)
    return out
