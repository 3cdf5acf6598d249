"""The owners' page as server-rendered HTML: the gap topics, charts, pages, syncs (every value escaped)."""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

from bot.answering.texts import Lang
from bot.insights.charts import paired_bars, share_line, stacked_bars
from bot.insights.report import GapReport, PageStat, Topic
from bot.insights.texts import t

PERIODS = (7, 30, 90, 365)


def _doc(lang: Lang, title: str, body: str) -> str:
    return (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title><link rel="stylesheet" href="/admin/static/admin.css"></head>'
            f'<body>{body}</body></html>')


def login_page(lang: Lang, csrf: str, failed: bool = False) -> str:
    other = "en" if lang == "zh" else "zh"
    error = f'<p class="error" role="alert">{escape(t("login_failed", lang))}</p>' if failed else ""
    return _doc(lang, t("login_title", lang), (
        f'<main class="login"><h1>{escape(t("login_title", lang))}</h1>{error}'
        f'<form method="post" action="/admin/login?lang={lang}" id="login">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<label for="token">{escape(t("login_token", lang))}</label>'
        f'<input id="token" name="token" type="password" autocomplete="current-password" required>'
        f'<button type="submit">{escape(t("login_button", lang))}</button></form>'
        f'<p class="lang"><a href="/admin/login?lang={other}">{"English" if other == "en" else "中文"}</a></p>'
        f'</main>'))


def admin_page(report: GapReport, lang: Lang, *, spaces: Sequence[str], days: int, csrf: str,
               index_size: dict[str, int], syncs: Sequence[dict[str, Any]]) -> str:
    space = report.scope.space or ""
    other = "en" if lang == "zh" else "zh"
    picker = "".join(f'<option value="{escape(s)}"{" selected" if s == space else ""}>{escape(s)}</option>'
                     for s in sorted({*spaces, *report.hidden_spaces, *([space] if space else [])}))
    periods = "".join(f'<option value="{d}"{" selected" if d == days else ""}>{escape(t("days", lang, n=d))}'
                      f'</option>' for d in PERIODS)
    logout = (f'<form method="post" action="/admin/logout" class="logout"><input type="hidden" name="csrf" '
              f'value="{escape(csrf)}"><button type="submit">{escape(t("logout", lang))}</button></form>'
              if csrf else "")
    head = (f'<header><h1>{escape(t("title", lang))}</h1><nav>'
            f'<form method="get" action="/admin" class="filters"><input type="hidden" name="lang" value="{lang}">'
            f'<select name="space" aria-label="space"><option value="">{escape(t("space_all", lang))}</option>'
            f'{picker}</select><select name="days" aria-label="{escape(t("since", lang))}">{periods}</select>'
            f'<button type="submit">{escape(t("apply", lang))}</button></form>'
            f'<a class="lang" href="/admin?lang={other}&amp;space={escape(space)}&amp;days={days}">'
            f'{"English" if other == "en" else "中文"}</a>{logout}</nav></header>')
    return _doc(lang, t("title", lang), head + "<main>" + "".join([
        _totals(report, lang, index_size), _charts(report, lang), _gaps(report.gap_topics, lang),
        _top(report.top_topics, lang), _pages(report, lang), _syncs(syncs, lang)]) + "</main>")


def _totals(report: GapReport, lang: Lang, index_size: dict[str, int]) -> str:
    tt = report.totals
    share = f'{tt["covered"] / tt["questions"]:.0%}' if tt["questions"] else "–"
    cells = [("questions", tt["questions"]), ("covered_share", share), ("not_covered", tt["not_covered"]),
             ("weak", tt["weak"]), ("up", tt["up"]), ("down", tt["down"]), ("askers", tt["askers"])]
    cards = "".join(f'<div class="stat"><span class="n">{escape(str(v))}</span><span>{escape(t(k, lang))}</span>'
                    f'</div>' for k, v in cells)
    hidden = (f'<p class="note">{escape(t("hidden", lang, n=tt["hidden"], spaces=", ".join(report.hidden_spaces)))}'
              f'</p>' if tt["hidden"] else "")
    return (f'<section class="totals">{cards}</section>{hidden}'
            f'<p class="note">{escape(t("index_size", lang, **index_size))}</p>')


def _charts(report: GapReport, lang: Lang) -> str:
    days = [d["day"] for d in report.daily]
    platforms = sorted({p for d in report.daily for p in d["platforms"]})
    series = {p: [d["platforms"].get(p, 0) for d in report.daily] for p in platforms}
    shares = [d["covered"] / d["questions"] if d["questions"] else 0.0 for d in report.daily]
    weeks = [w["week"] for w in report.weekly]
    return ('<section class="charts">'
            + stacked_bars(t("chart_daily", lang), days, series)
            + share_line(t("chart_covered", lang), days, shares)
            + paired_bars(t("chart_feedback", lang), weeks, [w["up"] for w in report.weekly],
                          [w["down"] for w in report.weekly], ("👍", "👎"))
            + "</section>")


def _gaps(topics: Sequence[Topic], lang: Lang) -> str:
    if not topics:
        return f'<section id="gaps"><h2>{escape(t("gaps", lang))}</h2><p>{escape(t("no_gaps", lang))}</p></section>'
    cards = []
    for topic in topics:
        reasons = " · ".join(t(f"reason_{k}", lang, n=v) for k, v in sorted(topic.reasons.items()))
        examples = "".join(f"<li>{escape(q)}</li>" for q in topic.examples)
        nearest = "".join(f'<li><a href="{escape(p.url)}" rel="noreferrer">{escape(p.title)}</a> '
                          f'<span class="score">{p.score:.2f}</span></li>' for p in topic.nearest)
        askers = (f'<p class="askers">{escape(t("askers_ids", lang))}: {escape(", ".join(topic.asker_ids))}</p>'
                  if topic.asker_ids else "")
        cards.append(
            f'<article class="topic {escape(topic.kind)}" id="t-{escape(topic.id)}">'
            f'<span class="badge">{escape(t("kind_" + topic.kind, lang)) if topic.kind else ""}</span>'
            f'<ul class="examples">{examples}</ul>'
            f'<p class="meta">{escape(t("topic_meta", lang, questions=topic.questions, askers=topic.askers, first=topic.first.date(), last=topic.last.date()))}'  # noqa: E501
            f' · {escape(reasons)}</p>{askers}'
            f'<details><summary>{escape(t("nearest", lang))}</summary><ul>{nearest}</ul></details></article>')
    return f'<section id="gaps"><h2>{escape(t("gaps", lang))}</h2>{"".join(cards)}</section>'


def _top(topics: Sequence[Topic], lang: Lang) -> str:
    rows = "".join(f"<tr><td>{escape(tp.examples[0])}</td><td>{tp.questions}</td><td>{tp.askers}</td></tr>"
                   for tp in topics[:10])
    return (f'<section id="top"><h2>{escape(t("top_topics", lang))}</h2><table><tr><th></th>'
            f'<th>{escape(t("questions", lang))}</th><th>{escape(t("askers", lang))}</th></tr>{rows}</table></section>')


def _page_rows(stats: Sequence[PageStat]) -> str:
    return "".join(f'<tr><td><a href="{escape(s.page.url)}" rel="noreferrer">{escape(s.page.title)}</a></td>'
                   f'<td>{s.cited}</td><td>{s.ups}</td><td>{s.downs}</td></tr>' for s in stats)


def _pages(report: GapReport, lang: Lang) -> str:
    head = (f'<tr><th>{escape(t("page", lang))}</th><th>{escape(t("cited", lang))}</th><th>👍</th><th>👎</th></tr>')
    never = "".join(f'<li><a href="{escape(p.url)}" rel="noreferrer">{escape(p.title)}</a></li>'
                    for p in report.never_cited) or f'<li>{escape(t("none", lang))}</li>'
    return (f'<section id="pages"><h2>{escape(t("cited_pages", lang))}</h2><table>{head}'
            f'{_page_rows(report.cited_pages)}</table>'
            f'<h2>{escape(t("down_pages", lang))}</h2><table>{head}{_page_rows(report.downvoted_pages)}</table>'
            f'<h2>{escape(t("never_cited", lang))}</h2><ul class="never">{never}</ul></section>')


def _syncs(syncs: Sequence[dict[str, Any]], lang: Lang) -> str:
    if not syncs:
        return f'<section id="syncs"><h2>{escape(t("syncs", lang))}</h2><p>{escape(t("no_syncs", lang))}</p></section>'
    rows = "".join(
        f'<tr class="{"ok" if s.get("ok", True) else "failed"}"><td>{escape(str(s.get("started_at", "")))}</td>'
        f'<td>{s.get("added", 0)} / {s.get("updated", 0)} / {s.get("removed", 0)} / {len(s.get("failed") or [])}'
        f'</td><td>{float(s.get("seconds") or 0):.1f}</td></tr>' for s in syncs)
    return (f'<section id="syncs"><h2>{escape(t("syncs", lang))}</h2><table><tr>'
            f'<th>{escape(t("sync_when", lang))}</th><th>{escape(t("sync_result", lang))}</th>'
            f'<th>{escape(t("sync_seconds", lang))}</th></tr>{rows}</table></section>')
