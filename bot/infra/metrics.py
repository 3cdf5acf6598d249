"""Prometheus metrics, shared by the core, the adapters and the sync (exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()

QUESTIONS = Counter("wikibot_questions_total", "Questions answered", ["platform", "mode", "covered"],
                    registry=REGISTRY)
ANSWER_SECONDS = Histogram("wikibot_answer_seconds", "Time from question to final answer", ["platform"],
                           buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120), registry=REGISTRY)
ACK_SECONDS = Histogram("wikibot_ack_seconds", "Time from event delivery to acknowledgement", ["platform"],
                        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3), registry=REGISTRY)
RETRIEVAL_SECONDS = Histogram("wikibot_retrieval_seconds", "Search latency", registry=REGISTRY,
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2))
LLM_ERRORS = Counter("wikibot_llm_errors_total", "LLM failures by kind", ["kind"], registry=REGISTRY)
EVENTS_DEDUPLICATED = Counter("wikibot_events_deduplicated_total", "Repeated deliveries dropped", ["platform"],
                              registry=REGISTRY)
def platform_of(path: str) -> str:
    """The `platform` label for a request refused before any adapter saw it: no label per made-up path."""
    first = path.strip("/").split("/")[0]
    return first if first in ("feishu", "slack") else "other"


EVENTS_REJECTED = Counter("wikibot_events_rejected_total", "Events failing verification", ["platform", "reason"],
                          registry=REGISTRY)
SYNC_RUNS = Counter("wikibot_sync_runs_total", "Sync runs by result", ["result"], registry=REGISTRY)
SYNC_PAGES = Counter("wikibot_sync_pages_total", "Pages seen by sync, by outcome", ["outcome"], registry=REGISTRY)
FEEDBACK = Counter("wikibot_feedback_total", "Feedback clicks", ["platform", "value"], registry=REGISTRY)
ACCESS_FALLBACKS = Counter("wikibot_access_fallbacks_total",
                           "Answers limited to tenant-wide spaces because access could not be determined",
                           ["platform"], registry=REGISTRY)
