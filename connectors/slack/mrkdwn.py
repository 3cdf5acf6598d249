"""Markdown (what the core writes) to Slack mrkdwn (what Slack renders), and back to plain text.

Slack's mrkdwn is not Markdown: `*bold*`, `_italic_`, `~strike~`, `<url|text>` links,
no headings, and `&`, `<`, `>` must be escaped or Slack reads them as control
sequences (`<!channel>` would ping everyone). Wiki text and model output are
untrusted, so everything is escaped first and only our own link syntax is added.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.answering.models import Reference

_FENCE = re.compile(r"^\s*```")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^(\s*)&gt;\s?")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_MARKER = re.compile(r"\[(\d{1,2})\](?!\()")
_BOLD_MARK = "\x00"  # stands for Slack's `*` until single-star italics have been converted
_SLACK_LINK = re.compile(r"<([^<>|\s]+)\|([^<>]*)>|<([^<>|\s]+)>")


def escape(text: str) -> str:
    """Escape Slack's three control characters (and nothing else, as Slack asks)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    """A Slack link; a URL that is not http(s) or mailto stays plain text, never a live link."""
    if not re.match(r"^(https?://|mailto:)", url):
        return escape(label)
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")
    return f"<{safe}|{_label(label)}>"


def _label(text: str) -> str:
    return text.replace("|", "¦").replace(">", "&gt;").replace("<", "&lt;")


def to_mrkdwn(markdown: str, references: Sequence[Reference] = ()) -> str:
    """Convert the core's markdown; `[n]` markers become links to the n-th reference."""
    out: list[str] = []
    in_fence = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append("```")
            continue
        out.append(escape(line) if in_fence else _line(line, references))
    if in_fence:
        out.append("```")
    return "\n".join(out)


def _line(line: str, references: Sequence[Reference]) -> str:
    heading = _HEADING.match(line)
    if heading:
        line = "**" + heading.group(1).strip("*_ ") + "**"
    elif _RULE.match(line):
        return "──────────"
    else:
        line = _BULLET.sub(lambda m: m.group(1) + "• ", line, count=1)
    parts: list[str] = []
    last = 0
    for m in _INLINE_CODE.finditer(line):  # code spans are kept verbatim (escaped only)
        parts.append(_inline(line[last:m.start()], references))
        parts.append(escape(m.group(0)))
        last = m.end()
    parts.append(_inline(line[last:], references))
    return _QUOTE.sub(lambda m: m.group(1) + "> ", "".join(parts), count=1)


def _inline(text: str, references: Sequence[Reference]) -> str:
    links: list[str] = []

    def keep(rendered: str) -> str:
        links.append(rendered)
        return f"\x01{len(links) - 1}\x02"

    text = _IMAGE.sub(lambda m: keep(link(m.group(2), m.group(1) or m.group(2))), text)
    text = _LINK.sub(lambda m: keep(link(m.group(2), _plain_label(m.group(1)))), text)

    def marker(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if 1 <= n <= len(references) and references[n - 1].url:
            return keep(link(references[n - 1].url, f"[{n}]"))
        return m.group(0)

    text = _MARKER.sub(marker, text)
    text = escape(text)
    text = _BOLD.sub(lambda m: _BOLD_MARK + m.group(2) + _BOLD_MARK, text)
    text = _ITALIC.sub(lambda m: "_" + m.group(1) + "_", text)
    text = _STRIKE.sub(lambda m: "~" + m.group(1) + "~", text)
    text = text.replace(_BOLD_MARK, "*")
    return re.sub(r"\x01(\d+)\x02", lambda m: links[int(m.group(1))], text)


def _plain_label(label: str) -> str:
    return re.sub(r"\*\*|__|`", "", label)


def to_plain(mrkdwn: str) -> str:
    """The notification text of a message (no markup, links as their labels), for `text=`."""
    text = _SLACK_LINK.sub(lambda m: m.group(2) if m.group(1) else m.group(3), mrkdwn)
    text = re.sub(r"(?<!\w)[*_~](?=\S)|(?<=\S)[*_~](?!\w)", "", text)
    return text.replace("```", "")


def clean_incoming(text: str, bot_user_id: str = "") -> str:
    """A user's message as plain text: the bot's mention removed, other mentions and links readable."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    text = re.sub(r"<@([UW][A-Z0-9]+)\|([^>]+)>", r"@\2", text)
    text = re.sub(r"<#C[A-Z0-9]+\|([^>]*)>", r"#\1", text)
    text = re.sub(r"<!(here|channel|everyone)(\|[^>]*)?>", r"@\1", text)
    text = re.sub(r"<!subteam\^[A-Z0-9]+\|([^>]+)>", r"\1", text)
    text = re.sub(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<((?:https?|mailto):[^>]+)>", r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip()
