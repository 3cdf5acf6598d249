"""Lexical sparse vectors for Chinese and English, for Qdrant's IDF modifier.

Chinese is segmented with jieba (search mode) and also contributes character
bigrams, which keep recall when jieba splits a name differently in a question
and in a page; English words are lower-cased, stemmed and stop-word filtered.
Documents carry BM25 term-frequency weights; Qdrant multiplies in the IDF.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9][a-z0-9_\-.+#]*[a-z0-9+#]|[a-z0-9]")

_EN_STOP = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my no not of on or our she so than that the their them then there these they this to was we were what "
    "when where which who whom why will with would you your he his her him".split()
)
_ZH_STOP = frozenset(
    "的 了 和 是 在 有 我 你 他 她 它 们 这 那 都 就 也 与 及 或 而 被 把 对 为 以 于 之 其 中 上 下 吗 呢 吧 啊 "
    "什么 怎么 如何 哪些 哪个 哪 多少 为什么 是否 可以 一个 一种 我们 你们 他们 请问 请 需要 应该 能 会".split()
)

K1 = 1.2
B = 0.75
AVG_LEN = 128.0


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


_jieba_lock = threading.Lock()


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _jieba_lock:
        jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import py_rust_stemmers

    return py_rust_stemmers.SnowballStemmer("english")


def tokenize(text: str) -> list[str]:
    """Terms of a text: jieba words and bigrams for Chinese runs, stems for Latin words."""
    text = text.lower()
    terms: list[str] = []
    jieba = _jieba()
    for run in _CJK_RUN.findall(text):
        for w in jieba.cut_for_search(run):
            if w not in _ZH_STOP and (len(w) > 1 or w not in _ZH_STOP):
                terms.append(w)
        terms.extend("~" + run[i:i + 2] for i in range(len(run) - 1))
    latin = _CJK_RUN.sub(" ", text)
    stem = _stemmer().stem_word
    for w in _WORD.findall(latin):
        if w in _EN_STOP:
            continue
        terms.append(stem(w) if w.isalpha() else w)
    return terms


def term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def document_vector(text: str) -> SparseVector:
    counts = Counter(term_id(t) for t in tokenize(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVG_LEN)
    items = sorted(counts.items())
    return SparseVector([i for i, _ in items], [tf * (K1 + 1) / (tf + norm) for _, tf in items])


def query_vector(text: str) -> SparseVector:
    ids = sorted({term_id(t) for t in tokenize(text)})
    return SparseVector(ids, [1.0] * len(ids))
