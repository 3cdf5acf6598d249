"""`wikibot sync [--full] [--json]`: one recorded sync with a progress bar and a printed report."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator

from bot.app.settings import Settings
from bot.infra.coordination import make_coordinator
from bot.syncing.runner import run_and_record
from retrieval.sync import SyncProgress, SyncReport
from bot.syncing.lease import LeasedSync, SyncSkipped
from retrieval.errors import IndexLockedError

INDEX_LOCKED = 4


def run_sync_command(settings: Settings, full: bool, as_json: bool) -> int:
    """`wikibot sync [--full] [--json]`: 0 all synced, 1 some pages or the listing failed, 2 not configured,
    3 a sync is running elsewhere (a `serve` replica holds the sync lease; a lease merely settling after
    the last scheduled sync is taken over), 4 the embedded index is locked by another process (a running
    `serve`: let it sync, or stop it).

    `--json` prints `SyncReport.to_dict()`: counts for added/updated/unchanged/removed/chunks_embedded,
    lists for skipped (`page`, `id`, `type`, `reason`) and failed (`page`, `id`, `reason`), `skipped_by_type`,
    and `by_kind` (per page kind: listed, added, updated, unchanged, skipped, failed).
    """
    from rich.console import Console
    from rich.markup import escape

    from bot.app.factories import open_index, wiki_source

    err = Console(stderr=True)
    try:
        source = wiki_source(settings)
    except ValueError as exc:
        err.print("[red]error:[/red] " + escape(str(exc)))
        return 2
    try:
        index = open_index(settings, check=not full)  # --full rebuilds once the listing is complete
    except IndexLockedError as exc:
        err.print("[yellow]not synced:[/yellow] " + escape(str(exc)))
        return INDEX_LOCKED
    coordinator = make_coordinator(settings.redis.url.get_secret_value(), settings.data_dir,
                                   settings.qdrant.collection_prefix)
    try:
        with _progress_bar(err) as progress:
            leased = LeasedSync(lambda: run_and_record(index, source, settings.data_dir, full=full,
                                                       progress=progress),
                                coordinator, ttl_seconds=settings.wikibot.sync_lease_seconds, take_settled=True)
            report = leased()
    except SyncSkipped as exc:
        err.print(f"[yellow]not synced:[/yellow] a sync is running elsewhere ({escape(exc.holder or '?')}); "
                  "try again when it is done")
        return 3
    finally:
        coordinator.close()
        index.close()
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report, Console())
    return 0 if report.ok else 1


@contextmanager
def _progress_bar(console: Any) -> Iterator[SyncProgress | None]:
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(TextColumn("syncing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
             console=console, transient=True) as bar:
        task = bar.add_task("sync", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_report(r: SyncReport, console: Any) -> None:
    console.print(f"Sync {'finished' if r.ok else 'finished with problems'} in {r.seconds:.1f}s: "
                  f"{r.added} added, {r.updated} updated, {r.unchanged} unchanged, {r.removed} removed; "
                  f"{r.chunks_embedded} chunks embedded.", markup=False)
    if r.by_kind:
        kinds = ", ".join(f"{k} {sum(v[o] for o in ('added', 'updated', 'unchanged'))}"
                          for k, v in sorted(r.by_kind.items()) if v["listed"])
        console.print(f"Pages by kind: {kinds}", markup=False)
    if r.skipped:
        by_type = ", ".join(f"{t} {n}" for t, n in sorted(r.to_dict()["skipped_by_type"].items()))
        console.print(f"Skipped: {by_type}", markup=False)
        for s in r.skipped:
            console.print(f"  - {s['page']} [{s['type']}] ({s['id']}): {s.get('reason', '')}", markup=False)
    if r.failed:
        kept = "not in the rebuilt index" if r.full else "kept as last synced"
        console.print(f"Failed ({len(r.failed)}), {kept}:", markup=False)
        for f in r.failed:
            console.print(f"  - {f['page']} ({f['id']}): {f['reason']}", markup=False)
    for e in r.errors:
        console.print(f"Problem: {e}", markup=False)
    if not r.listing_complete:
        console.print("The wiki listing was incomplete, so no page was removed.", markup=False)
