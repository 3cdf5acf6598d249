"""The owners' digest as Slack Block Kit, posted to a channel with the bot's own Web API client."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.insights.digest import Digest
from bot.insights.texts import t


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(title: str, url: str) -> str:
    return f"<{url}|{_esc(title).replace('|', '/')}>" if url else _esc(title)


def digest_blocks(d: Digest) -> list[dict[str, Any]]:
    lang = d.lang
    title = t("digest_title", lang, start=d.start.date(), end=d.end.date())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _esc(
            t("digest_intro", lang, questions=d.questions, covered=d.covered) if d.topics else t("digest_none", lang))}},
    ]
    for i, topic in enumerate(d.topics, 1):
        near = topic.nearest[0] if topic.nearest else None
        advice = (f"{t('kind_extend', lang)}: {_link(near.title, near.url)}" if topic.kind == "extend" and near
                  else t("kind_new", lang) + (f" ({_link(near.title, near.url)})" if near else ""))
        meta = t("topic_meta", lang, questions=topic.questions, askers=topic.askers, first=topic.first.date(),
                 last=topic.last.date())
        lines = [f"*{i}. {_link(topic.examples[0], d.topic_url(topic))}*",
                 *[f"• {_esc(q)}" for q in topic.examples[1:]], f"_{_esc(meta)}_", advice]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}})
    if d.admin_url:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                        "text": _link(t("digest_admin", lang), d.admin_url)}]})
    return blocks[:50]


async def post_digest(client: AsyncWebClient, channel: str, d: Digest) -> str:
    title = t("digest_title", d.lang, start=d.start.date(), end=d.end.date())
    resp = await client.chat_postMessage(channel=channel, text=title, blocks=digest_blocks(d), unfurl_links=False)
    return str(resp.get("ts", ""))
