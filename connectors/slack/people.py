"""Who a Slack user is (their e-mail) and who is in a conversation, for answering within access.

`users.info` needs the `users:read` and `users:read.email` scopes; `conversations.members` needs
`channels:read`, `groups:read`, `im:read`, `mpim:read` for the kinds of conversation the bot is in.
Profiles are cached for `cache_seconds` so a group's members are not looked up on every question.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

SLACKBOT = "USLACKBOT"


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str  # '' when Slack gives none (a bot, a guest without one, no users:read.email scope)
    human: bool


class SlackPeople:
    def __init__(self, client: AsyncWebClient, *, cache_seconds: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._people: dict[str, tuple[float, Person]] = {}

    async def person(self, user_id: str) -> Person:
        hit = self._people.get(user_id)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        user = (await self.client.users_info(user=user_id)).get("user") or {}
        profile = user.get("profile") or {}
        human = not (user.get("is_bot") or user.get("deleted") or user_id == SLACKBOT)
        person = Person(user_id, str(profile.get("email") or "").strip().lower(), human)
        self._people[user_id] = (self._clock() + self.cache_seconds, person)
        return person

    async def email(self, user_id: str) -> str:
        """The user's e-mail, '' if they have none (or are a bot)."""
        person = await self.person(user_id)
        return person.email if person.human else ""

    async def humans(self, channel_id: str) -> list[str]:
        """The people in a conversation (bots and deleted users left out)."""
        ids: list[str] = []
        cursor = ""
        while True:
            resp = await self.client.conversations_members(channel=channel_id, limit=200,
                                                           **({"cursor": cursor} if cursor else {}))
            ids.extend(str(u) for u in resp.get("members") or [])
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return [uid for uid in ids if (await self.person(uid)).human]
