"""Which sentences an extractive answer quotes: those that best answer the question.

Quoting the top-ranked chunks whole often shows a glossary table or a side detail while the page's own
answer sits two chunks lower. So every sentence (list item, table row) of the best few passages is
scored by the share of the question's term *weight* it holds (rare words count more than "多少"),
helped by its section heading and page title ("区别" in "一句话区别" says the section compares) and by
how many candidate passages come from its page (the page they agree on); a link's label counts for
nothing (a glossary row pointing to "…的区别" is no comparison). The best sentences are quoted in page
order, a table row with its header.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from retrieval.index import Hit
from retrieval.termweights import bigrams, passage_terms, query_terms, sentences, weighted_coverage

PASSAGES = 5  # candidate passages, in rank order
MAX_QUOTED = 3  # passages quoted
MAX_SENTENCES = 5
MAX_CHARS = 420
RANK_PENALTY = 0.03  # per rank, so that equal sentences come from the better-ranked passage
PAGE_BONUS = 0.1  # per further candidate passage of the same page: the page several hits agree on
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class Quote:
    hit_index: int  # into the hits given
    text: str  # the chosen sentences of that passage, in page order


def choose_quotes(question: str, hits: Sequence[Hit]) -> list[Quote]:
    """The passages to quote, each cut to its best sentences; passages in order of their best sentence."""
    terms = query_terms(question)
    qbi = bigrams(question.lower())
    scored: list[tuple[float, int, int, str]] = []  # (score, hit index, sentence position, sentence)
    units_of: dict[int, list[str]] = {}
    per_page = Counter(h.page_id for h in hits[:PASSAGES])
    for i, h in enumerate(hits[:PASSAGES]):
        page_bonus = PAGE_BONUS * min(3, per_page[h.page_id] - 1)
        heading = passage_terms(" ".join([h.title, *h.heading_path]))
        head_cov = weighted_coverage(terms, heading)
        units = sentences(h.text)
        units_of[i] = units
        for j, s in enumerate(units):
            if s.startswith("#"):  # a heading: it counts through `heading`, it is no answer itself
                continue
            present = passage_terms(_LINK.sub("", s))  # a cross-reference's label is not content
            own = weighted_coverage(terms, present)
            with_heading = weighted_coverage(terms, present | heading)
            bi = len(qbi & bigrams(s.lower())) / len(qbi) if qbi else 0.0
            score = 0.6 * own + 0.4 * with_heading + 0.4 * head_cov + 0.2 * bi - RANK_PENALTY * i + page_bonus
            if _is_table_rule(s) or len(s) < 4:
                score -= 1.0
            scored.append((score, i, j, s))
    if not scored:
        return []
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    best = scored[0][0]
    chosen: dict[int, set[int]] = {}
    order: list[int] = []
    chars = 0
    for score, i, j, s in scored:
        if len(chosen) >= MAX_QUOTED and i not in chosen:
            continue
        if chosen and (score < best - 0.25 or chars + len(s) > MAX_CHARS
                       or sum(len(v) for v in chosen.values()) >= MAX_SENTENCES):
            continue
        chosen.setdefault(i, set()).add(j)
        if i not in order:
            order.append(i)
        chars += len(s)
    return [Quote(i, _join(units_of[i], chosen[i])) for i in order]


def _is_table_rule(s: str) -> bool:
    return set(s.replace("|", "").strip()) <= set("-: ")


def _join(units: list[str], picked: set[int]) -> str:
    """The picked units in page order; a table row gets its header row; gaps become '…'."""
    keep = set(picked)
    for j in picked:
        if units[j].startswith("|"):
            k = j
            while k > 0 and units[k - 1].startswith("|"):
                k -= 1
            keep.add(k)  # the header row
            if k + 1 < len(units) and _is_table_rule(units[k + 1]):
                keep.add(k + 1)
    out: list[str] = []
    last = -2
    for j in sorted(keep):
        if out and j != last + 1:
            out.append("…")
        out.append(units[j])
        last = j
    return "\n".join(out)
