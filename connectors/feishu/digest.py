"""The owners' digest as a Feishu card, sent to a chat with the bot's own API client."""

from __future__ import annotations

import uuid
from typing import Any

from bot.insights.digest import Digest
from bot.insights.texts import t
from connectors.feishu.api import FeishuApi
from connectors.feishu.markdown import escape_tags


def _link(title: str, url: str) -> str:
    title = escape_tags(title).replace("[", "(").replace("]", ")")
    return f"[{title}]({url})" if url else title


def digest_card(d: Digest) -> dict[str, Any]:
    lang = d.lang
    title = t("digest_title", lang, start=d.start.date(), end=d.end.date())
    elements: list[dict[str, Any]] = [{"tag": "markdown", "content": escape_tags(
        t("digest_intro", lang, questions=d.questions, covered=d.covered) if d.topics else t("digest_none", lang))}]
    for i, topic in enumerate(d.topics, 1):
        near = topic.nearest[0] if topic.nearest else None
        advice = (f"{t('kind_extend', lang)}：{_link(near.title, near.url)}" if topic.kind == "extend" and near
                  else t("kind_new", lang) + (f"（{_link(near.title, near.url)}）" if near else ""))
        meta = t("topic_meta", lang, questions=topic.questions, askers=topic.askers, first=topic.first.date(),
                 last=topic.last.date())
        head = _link(topic.examples[0], d.topic_url(topic))
        lines = [f"**{i}. {head}**", *[f"- {escape_tags(q)}" for q in topic.examples[1:]],
                 f"<font color='grey'>{escape_tags(meta)}</font>", advice]
        elements.append({"tag": "markdown", "content": "\n".join(lines)})
    if d.admin_url:
        elements.append({"tag": "markdown", "content": _link(t("digest_admin", lang), d.admin_url)})
    return {"schema": "2.0", "config": {"update_multi": True},
            "header": {"title": {"tag": "plain_text", "content": title[:100]}, "template": "orange"},
            "body": {"elements": elements}}


async def post_digest(api: FeishuApi, chat_id: str, d: Digest) -> str:
    return await api.send_card(chat_id, digest_card(d), uuid=str(uuid.uuid4()))
