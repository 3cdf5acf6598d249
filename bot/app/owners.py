"""For the wiki's owners: the gap report, the /admin page and the digest, built from the settings.

Part of the composition root: it opens the index, applies the access rules and the privacy setting,
and gives the digest the platform connectors' own API clients to post with.
"""

from __future__ import annotations

from typing import Any

from bot.app.factories import open_index
from bot.app.settings import Settings
from bot.insights.service import Insights


def open_insights(settings: Settings, index: Any = None) -> Insights:
    """The insights over the configured index (opened here unless given) and its question log."""
    return Insights.open(index if index is not None else open_index(settings),
                         prefix=settings.qdrant.collection_prefix, chat_spaces=settings.access.spaces_for,
                         data_dir=settings.data_dir, show_askers=settings.admin.show_askers)


def gap_report_command(settings: Settings, *, since: str, space: str | None, as_json: bool, topics: int,
                       console: Any) -> int:
    """`wikibot gaps`: the report printed (or as JSON); exit 0, or 2 for a bad --since."""
    import json

    from bot.insights.console import print_report
    from bot.insights.questions import Scope, parse_since
    from bot.insights.report import ReportOptions

    try:
        start = parse_since(since)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    insights = open_insights(settings)
    try:
        report = insights.report(Scope(since=start, space=space),
                                 ReportOptions(topics=topics, show_askers=settings.admin.show_askers))
    finally:
        insights.index.close()
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print_report(report, console)
    return 0
