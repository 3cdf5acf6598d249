"""The gap report in a terminal (`wikibot gaps`): rich tables, a line per topic."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bot.insights.report import GapReport


def print_report(report: GapReport, console: Console) -> None:
    t = report.totals
    share = t["covered"] / t["questions"] if t["questions"] else 0.0
    where = f"space {report.scope.space}" if report.scope.space else "all spaces"
    since = report.scope.since.date().isoformat() if report.scope.since else "the start"
    console.print(f"[bold]Questions since {since}, {where}[/bold]: {t['questions']} from {t['askers']} people, "
                  f"{share:.0%} covered, {t['not_covered']} not covered, {t['weak']} weakly grounded, "
                  f"👍 {t['up']} 👎 {t['down']}")
    if t["hidden"]:
        console.print(f"[dim]{t['hidden']} questions from space-limited chats are shown only with --space "
                      f"({', '.join(report.hidden_spaces)})[/dim]")

    gaps = Table(title="Gaps: what the wiki could not answer", show_lines=True)
    for col in ("topic", "asked", "people", "first – last", "why", "nearest page"):
        gaps.add_column(col)
    for topic in report.gap_topics:
        near = topic.nearest[0] if topic.nearest else None
        advice = (f"extend: {near.title} ({near.score:.2f})\n{near.url}" if topic.kind == "extend" and near
                  else "no page at all" + (f"\n(nearest: {near.title} {near.score:.2f})" if near else ""))
        gaps.add_row("\n".join(topic.examples), str(topic.questions), str(topic.askers),
                     f"{topic.first.date()} – {topic.last.date()}",
                     ", ".join(f"{k} {v}" for k, v in sorted(topic.reasons.items())), advice)
    console.print(gaps)

    top = Table(title="Most-asked topics")
    for col in ("topic", "asked", "people"):
        top.add_column(col)
    for topic in report.top_topics[:10]:
        top.add_row(topic.examples[0], str(topic.questions), str(topic.askers))
    console.print(top)

    pages = Table(title="Most-cited pages")
    for col in ("page", "cited", "👍", "👎"):
        pages.add_column(col)
    for s in report.cited_pages:
        pages.add_row(s.page.title, str(s.cited), str(s.ups), str(s.downs))
    console.print(pages)
    if report.downvoted_pages:
        console.print("[bold]Pages whose answers get 👎[/bold]: " + ", ".join(
            f"{s.page.title} ({s.downs}/{s.cited})" for s in report.downvoted_pages))
    if report.never_cited:
        console.print(f"[bold]Never cited ({len(report.never_cited)})[/bold]: "
                      + ", ".join(p.title for p in report.never_cited[:20]))
    if report.weekly:
        console.print("[bold]Covered share by week[/bold]: " + "  ".join(
            f"{w['week']} {w['covered_share']:.0%} of {w['questions']}" for w in report.weekly))
