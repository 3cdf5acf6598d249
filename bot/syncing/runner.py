"""Running a sync for the bot: each run recorded (`last_sync.json`, metrics) and stoppable.

The sync itself is `retrieval.sync`; this adds what the running program needs around it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from bot.infra import metrics
from retrieval.index import WikiIndex
from retrieval.sources import WikiSource
from retrieval.sync import SyncReport, sync_wiki

SYNC_HISTORY = "sync_history.jsonl"
HISTORY_KEPT = 50


def run_and_record(index: WikiIndex, source: WikiSource, data_dir: Path, **kwargs: Any) -> SyncReport:
    """`sync_wiki`, then the report saved as `last_sync.json` and counted in the metrics, even when
    the run ended in an exception (which is re-raised)."""
    t0 = time.perf_counter()
    report = SyncReport()
    try:
        sync_wiki(index, source, report=report, **kwargs)
    except BaseException as exc:
        report.errors.append(f"sync stopped: {exc!r}")
        save_report(report.finish(t0), data_dir)
        metrics.SYNC_RUNS.labels(result="error").inc()
        raise
    save_report(report, data_dir)
    metrics.SYNC_RUNS.labels(result="ok" if report.ok else "partial").inc()
    for outcome in ("added", "updated", "unchanged", "removed"):
        metrics.SYNC_PAGES.labels(outcome=outcome).inc(getattr(report, outcome))
    metrics.SYNC_PAGES.labels(outcome="skipped").inc(len(report.skipped))
    metrics.SYNC_PAGES.labels(outcome="failed").inc(len(report.failed))
    return report


def save_report(report: SyncReport, data_dir: Path) -> None:
    path = Path(data_dir) / "last_sync.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)
    history = path.with_name(SYNC_HISTORY)  # the owners' page shows the last few runs
    lines = history.read_text(encoding="utf-8").splitlines()[-(HISTORY_KEPT - 1):] if history.exists() else []
    lines.append(json.dumps(report.to_dict(), ensure_ascii=False))
    tmp = history.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(history)


def load_report(data_dir: Path) -> dict[str, Any] | None:
    """The last saved report, or None when there is none (or it cannot be read)."""
    path = Path(data_dir) / "last_sync.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except (OSError, ValueError):
        return None


class SyncRunner:
    """What `wikibot serve` hands to `SyncScheduler`: each call is one recorded sync of the source;
    `stop()` ends a running one at the next page boundary (and any later call at once)."""

    def __init__(self, index: WikiIndex, source: WikiSource, data_dir: Path, **kwargs: Any) -> None:
        self.index, self.source, self.data_dir, self.kwargs = index, source, data_dir, kwargs
        self._stop = threading.Event()

    def __call__(self) -> SyncReport:
        return run_and_record(self.index, self.source, self.data_dir, should_stop=self._stop.is_set, **self.kwargs)

    def stop(self) -> None:
        self._stop.set()
