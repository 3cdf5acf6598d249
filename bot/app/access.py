"""`[access] mode = "asker"`: the core's `AccessResolver` composed from the connectors.

Feishu says who may read which space (`connectors.feishu.access`); a Slack user is mapped to a Feishu
user by e-mail (Slack `users.info` → Feishu `batch_get_id`). No connector knows the other: the mapping
is made here, in the composition root. A Slack user without a Feishu account gets only what everyone
in the tenant may read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.answering.wikibot import WikiBot

if TYPE_CHECKING:
    from connectors.feishu.access import FeishuAccess
    from connectors.slack.people import SlackPeople

log = logging.getLogger(__name__)


class WikiAccess:
    """Readable spaces and chat members for askers on every platform, decided by Feishu's wiki."""

    def __init__(self, feishu: "FeishuAccess", slack: "SlackPeople | None" = None) -> None:
        self.feishu = feishu
        self.slack = slack
        self._warming: asyncio.Task[None] | None = None

    async def readable_spaces(self, platform: str, user_id: str) -> frozenset[str] | None:
        open_id = await self._feishu_id(platform, user_id)
        if open_id is None:
            return None
        if platform == "slack" and not open_id:
            log.info("access: slack user %s has no Feishu account (by e-mail): tenant-wide pages only", user_id)
            return await self.feishu.everyone_spaces()
        return await self.feishu.readable_spaces(open_id)

    async def reader_principals(self, platform: str, user_id: str) -> frozenset[str] | None:
        """What a page restricted below its space may name for this asker (None: nothing known)."""
        open_id = await self._feishu_id(platform, user_id)
        if open_id is None or (platform == "slack" and not open_id):
            return None
        return await self.feishu.principals(open_id)

    async def _feishu_id(self, platform: str, user_id: str) -> str | None:
        """The asker's Feishu open_id: as given on Feishu, by e-mail for a Slack user ('' when there is no
        Feishu account); None on a platform whose people cannot be matched."""
        if platform == "feishu":
            return user_id
        if platform == "slack" and self.slack is not None:
            email = await self.slack.email(user_id)
            return await self.feishu.open_id_by_email(email) if email else ""
        return None

    async def chat_members(self, platform: str, chat_id: str) -> Sequence[str] | None:
        if platform == "feishu":
            return await self.feishu.chat_members(chat_id)
        if platform == "slack" and self.slack is not None:
            return await self.slack.humans(chat_id)
        return None

    async def everyone_spaces(self) -> frozenset[str]:
        return await self.feishu.everyone_spaces()

    def invalidate(self) -> None:
        self.feishu.invalidate()

    async def warm_up(self) -> None:
        """Read the space readers before the first question (a failure is retried on the first one)."""
        try:
            await self.feishu.snapshot()
        except Exception as exc:  # noqa: BLE001
            log.warning("access: could not read the wiki spaces' readers yet (%s)", exc)

    def start_warm_up(self) -> None:
        """`warm_up` in the background: a big wiki's readers take a while (questions meanwhile wait for
        that same read), and start-up, health and acknowledgements must not."""
        self._warming = asyncio.create_task(self.warm_up())

    def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        self.feishu.api.close()


def install_access(settings: Any, bot: WikiBot, *, clock: Any = None) -> WikiAccess | None:
    """Give the bot its resolver when `[access] mode = "asker"`; None otherwise.

    Without a Feishu app nothing can be known, so every question is refused with a notice (fail closed).
    """
    if settings.access.mode != "asker":
        return None
    if not settings.feishu.enabled:
        log.error("access mode 'asker' needs the Feishu app (FEISHU_APP_ID, FEISHU_APP_SECRET): "
                  "no question can be answered until it is configured")
        return None
    from connectors.feishu.access import FeishuAccess
    from connectors.feishu.api import FeishuApi

    f = settings.feishu
    kw = {"clock": clock} if clock is not None else {}
    feishu = FeishuAccess(FeishuApi(f.app_id, f.app_secret.get_secret_value(), f.domain), f.wiki_spaces,
                          snapshot_seconds=max(settings.access.cache_seconds, 60.0), **kw)
    feishu.on_refresh = bot.access.forget  # answers cached from the old space readers are dropped
    slack = None
    if settings.slack.enabled:
        from connectors.slack.app import make_client
        from connectors.slack.people import SlackPeople

        slack = SlackPeople(make_client(settings.slack), cache_seconds=settings.access.cache_seconds, **kw)
    access = WikiAccess(feishu, slack)
    bot.access.resolver = access
    return access
