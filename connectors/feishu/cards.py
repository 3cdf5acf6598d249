"""Replies rendered as Feishu interactive cards (card JSON 2.0).

Every card has `update_multi` (2.0 requires it, and streaming updates need it),
and every builder goes through `fit`, which trims until the card is under
Feishu's 30 KB limit: a long answer is shortened, never refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from bot.answering.conversation import Outcome
from bot.answering.models import Reference, RefResult, Reply
from bot.answering.texts import Lang, text
from connectors.feishu.markdown import escape_tags, link_citations, plain_line, safe_markdown, strip_markers

_HEADING = re.compile(r"^\s*#{1,6}\s+", re.MULTILINE)
MAX_CARD_BYTES = 28_000  # Feishu refuses cards over 30 KB; keep a margin for the request envelope
def searching_card(lang: Lang) -> dict[str, Any]:
    return _card(text("title", lang), "blue", [_md("⏳ " + text("searching", lang))])


def streaming_card(partial: str, lang: Lang) -> dict[str, Any]:
    """The answer so far, while it is being generated (no references or buttons yet)."""
    def build(limit: int) -> dict[str, Any]:
        body = safe_markdown(strip_markers(_cut(partial, limit)) + " ▍")  # the cursor, inside any open fence
        return _card(text("title", lang), "blue", [_md(body), _note(text("searching", lang))])
    return fit(build, [20_000, 8_000, 2_000, 500])


def answer_card(reply: Reply) -> dict[str, Any]:
    lang = reply.language
    template = "blue" if reply.covered else "grey"
    if reply.degraded_reason:
        template = "orange"

    def build(level: int) -> dict[str, Any]:
        answer_limit, excerpt_limit, show_others = ((20_000, 240, True), (8_000, 160, True),
                                                    (3_000, 80, False), (800, 0, False))[level]
        answer = reply.answer
        if len(answer) > answer_limit:
            answer = _cut(answer, answer_limit) + "\n\n" + text("trimmed", lang)
        elements: list[dict[str, Any]] = [_md(link_citations(safe_markdown(answer), reply.references))]
        if reply.references:
            elements += [_hr(), _md(f"**{text('references', lang)}**")]
            elements += [_reference(i, r, excerpt_limit) for i, r in enumerate(reply.references, 1)]
        if reply.others_asked and show_others:
            lines = [f"- {plain_line(o.question, 80)} <font color='grey'>{o.asked_at.date():%Y-%m-%d}</font>"
                     for o in reply.others_asked]
            elements += [_hr(), _md(f"**{text('others_asked', lang)}**\n" + "\n".join(lines))]
        if reply.notice:
            elements.append(_note(reply.notice))
        if reply.question_id:
            elements.append(_feedback_buttons(reply.question_id, lang))
        return _card(text("title", lang), template, elements, summary=reply.answer)

    return fit(build, [0, 1, 2, 3])


def ref_card(result: RefResult) -> dict[str, Any]:
    lang = result.language

    def build(excerpt_limit: int) -> dict[str, Any]:
        title = text("ref_title", lang, q=_cut(result.query.replace("\n", " "), 40))
        if not result.references:
            return _card(title, "grey", [_md(plain_line(text("no_refs", lang, q=_cut(result.query, 200))))])
        return _card(title, "blue", [_reference(i, r, excerpt_limit)
                                     for i, r in enumerate(result.references, 1)])

    return fit(build, [300, 160, 60, 0])


def text_card(title: str, body: str, template: str = "blue") -> dict[str, Any]:
    """Help, status, errors and short notices: plain text shown as-is (escaped)."""
    lines = escape_tags(body)
    return fit(lambda limit: _card(title, template, [_md(_cut(lines, limit))]), [20_000, 4_000, 500])


def render(outcome: Outcome) -> dict[str, Any]:
    """The card for whatever the conversation decided to show."""
    if isinstance(outcome, Reply):
        return answer_card(outcome)
    if isinstance(outcome, RefResult):
        return ref_card(outcome)
    if outcome.kind == "error":
        return error_card(outcome.language)
    return text_card(text(_NOTICE_TITLES[outcome.kind], outcome.language), outcome.body)


_NOTICE_TITLES = {"help": "title_help", "status": "title_status", "unsupported": "title"}


def error_card(lang: Lang) -> dict[str, Any]:
    return text_card(text("title", lang), text("error", lang), template="red")


def fit(build: Callable[[Any], dict[str, Any]], levels: list[Any]) -> dict[str, Any]:
    """The first card, from the most to the least detailed, that fits in Feishu's size limit."""
    card: dict[str, Any] = {}
    for level in levels:
        card = build(level)
        if card_bytes(card) <= MAX_CARD_BYTES:
            return card
    # Nothing fit (pathological input, e.g. thousands of references): keep the first element, cut hard.
    first = card["body"]["elements"][0] if card.get("body", {}).get("elements") else _md("")
    if first.get("tag") == "markdown":
        first = _md(_cut(str(first.get("content", "")), 2_000))
    return _card(card.get("header", {}).get("title", {}).get("content", ""), "grey", [first])


def card_bytes(card: dict[str, Any]) -> int:
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _card(title: str, template: str, elements: list[dict[str, Any]], summary: str = "") -> dict[str, Any]:
    config: dict[str, Any] = {"update_multi": True}
    if summary:
        config["summary"] = {"content": _cut(strip_markers(summary).replace("\n", " "), 60)}
    return {"schema": "2.0", "config": config,
            "header": {"title": {"tag": "plain_text", "content": _cut(title, 100)}, "template": template},
            "body": {"elements": elements}}


def _reference(n: int, ref: Reference, excerpt_limit: int) -> dict[str, Any]:
    title = plain_line(ref.title or ref.page_id, 80)
    head = f"[{title}]({ref.url})" if ref.url.lower().startswith(("http://", "https://")) else title
    path = [h for h in ref.heading_path if h and h != ref.title]
    line = f"<number_tag>{n}</number_tag> **{head}**"
    if path:
        line += " <font color='grey'>" + plain_line(" › ".join(path), 60) + "</font>"
    excerpt = _HEADING.sub("", ref.excerpt).strip()
    if excerpt_limit and excerpt:
        line += "\n<font color='grey'>" + plain_line(excerpt, excerpt_limit) + "</font>"
    return _md(line)


def _feedback_buttons(question_id: str, lang: Lang) -> dict[str, Any]:
    def button(value: str, label: str) -> dict[str, Any]:
        return {"tag": "column", "width": "auto", "elements": [{
            "tag": "button", "text": {"tag": "plain_text", "content": label}, "type": "default",
            "size": "small",
            "behaviors": [{"type": "callback", "value": {"action": "feedback", "qid": question_id, "v": value,
                                                          "lang": lang}}],
        }]}
    return {"tag": "column_set", "flex_mode": "none", "horizontal_spacing": "8px",
            "columns": [button("up", text("helpful", lang)),
                        button("down", text("unhelpful", lang))]}


def _md(content: str) -> dict[str, Any]:
    return {"tag": "markdown", "content": content}


def _note(content: str) -> dict[str, Any]:
    return {"tag": "markdown", "content": f"<font color='grey'>{plain_line(content)}</font>",
            "text_size": "notation"}


def _hr() -> dict[str, Any]:
    return {"tag": "hr"}


def _cut(s: str, limit: int) -> str:
    if len(s) <= limit:
        return s
    cut = s[:limit]
    para = cut.rfind("\n\n")
    if para > limit // 2:
        cut = cut[:para]
    return cut.rstrip() + "…"
