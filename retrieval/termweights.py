"""How much a query term says: an inverse-frequency weight per term, in Chinese and English.

Counting shared terms treats "多少" like "液氮罐"; a question whose rare term is missing from the
passage is usually one the passage does not answer. The weights come from general-language
frequencies shipped in packages, so they need no statistics of the wiki itself: jieba's IDF table
for Chinese words and wordfreq's Zipf frequencies for English words. Numbers and codes (A100,
F6, 2026) count as rare.
"""

from __future__ import annotations

import importlib.util
import math
import re
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from retrieval.sparse import tokenize

MAX_WEIGHT = 14.0
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN = re.compile(r"[a-z0-9][a-z0-9_\-.+#]*[a-z0-9+#]|[a-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?\n])|(?<=[.;:])\s+")


@dataclass(frozen=True)
class QueryTerm:
    term: str  # as `retrieval.sparse.tokenize` writes it (stems for English)
    weight: float
    key: bool  # a number, a code or Latin word inside Chinese text, or a rare word


class IdfTable:
    """jieba's IDF table (`jieba/analyse/idf.txt`, 270k words) in ~13 MB: the words sorted in one string
    and looked up by bisection. `jieba.analyse` itself keeps it as a dict and, on import, loads jieba's
    part-of-speech model too: ~97 MB more in every process that weighs a question."""

    def __init__(self, pairs: list[tuple[str, float]]) -> None:
        pairs.sort()
        self._words = "\n".join(w for w, _ in pairs)
        self._starts = array("l")
        position = 0
        for word, _ in pairs:
            self._starts.append(position)
            position += len(word) + 1
        self._values = array("f", (v for _, v in pairs))
        ordered = sorted(self._values)
        self.median = float(ordered[len(ordered) // 2]) if ordered else 0.0  # as jieba computes it

    def __len__(self) -> int:
        return len(self._values)

    def _word(self, i: int) -> str:
        end = self._starts[i + 1] - 1 if i + 1 < len(self._starts) else len(self._words)
        return self._words[self._starts[i]:end]

    def get(self, word: str, default: float) -> float:
        lo, hi = 0, len(self._values)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._word(mid) < word:
                lo = mid + 1
            else:
                hi = mid
        return float(self._values[lo]) if lo < len(self._values) and self._word(lo) == word else default


@lru_cache(maxsize=1)
def _jieba_idf() -> IdfTable:
    spec = importlib.util.find_spec("jieba")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "analyse" / "idf.txt"
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            word, _, value = line.strip().partition(" ")
            if word and value:
                pairs.append((word, float(value)))
    return IdfTable(pairs)


@lru_cache(maxsize=1)
def _zipf():  # type: ignore[no-untyped-def]
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # optional: without it English words weigh alike
        return None
    return zipf_frequency


@lru_cache(maxsize=20000)
def _latin_weight(word: str) -> float:
    if any(c.isdigit() for c in word):
        return 12.0
    zipf = _zipf()
    if zipf is None:
        return 8.0
    return min(MAX_WEIGHT, max(0.5, (9.0 - zipf(word, "en")) * math.log(10) / 1.6))


def _zh_weight(word: str) -> float:
    idf = _jieba_idf()
    return min(MAX_WEIGHT, idf.get(word, idf.median))


@lru_cache(maxsize=4096)
def query_terms(query: str) -> tuple[QueryTerm, ...]:
    """The query's content terms with weights; character bigrams are left to `bigrams`."""
    text = query.lower()
    has_cjk = bool(_CJK_RUN.search(text))
    out: dict[str, QueryTerm] = {}
    for run in _CJK_RUN.findall(text):
        for term in tokenize(run):
            if term.startswith("~") or term in out:
                continue
            w = _zh_weight(term)
            out[term] = QueryTerm(term, w, w >= 10.5 and len(term) > 1)
    latin = _CJK_RUN.sub(" ", text)
    for word in _LATIN.findall(latin):
        terms = tokenize(word)
        if not terms or terms[0] in out:
            continue
        w = _latin_weight(word)
        key = any(c.isdigit() for c in word) or has_cjk or w >= 9.0
        out[terms[0]] = QueryTerm(terms[0], w, key)
    return tuple(out.values())


def bigrams(text: str) -> set[str]:
    """Chinese character bigrams, robust to jieba segmenting a name differently in two texts."""
    return {run[i:i + 2] for run in _CJK_RUN.findall(text) for i in range(len(run) - 1)}


def passage_terms(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


def sentences(text: str) -> list[str]:
    """Sentences and list items / table rows of a passage (Chinese and English ends, line breaks)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and len(s.strip()) > 1]


def weighted_coverage(terms: tuple[QueryTerm, ...], present: frozenset[str] | set[str]) -> float:
    total = sum(t.weight for t in terms)
    if total <= 0:
        return 0.0
    return sum(t.weight for t in terms if t.term in present) / total
