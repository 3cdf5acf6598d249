"""Which wiki spaces one answer may draw on: the chat's configured spaces, and in `asker` mode what the
people who will read the answer may read in the source wiki.

The core knows no platform: an `AccessResolver` (composed in `bot.app` from the connectors) says which
spaces a user may read and who is in a chat. This module decides, caches and fails closed:

- `[access] mode = "chat"` (default): only the chat's configured spaces (`[access] chat_spaces`), else all.
- `mode = "asker"`: in a direct message, the asker's readable spaces; in a group, the spaces readable by
  *every* member (the answer is seen by all of them). When that cannot be determined (an API failure, a
  user with no wiki account, a group too big to check) only spaces readable by everyone in the tenant.
- Either way a chat's configured spaces still bound it.

Readable sets are cached per user and member lists per chat for `cache_seconds`; `invalidate()` (after a
wiki sync) drops both. Failures are not cached, so the next question tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.infra.metrics import ACCESS_FALLBACKS

log = logging.getLogger(__name__)
MEMBER_LOOKUPS_AT_ONCE = 8


class AccessResolver(Protocol):
    """Who may read what in the source wiki, for users of the chat platforms."""

    async def readable_spaces(self, platform: str, user_id: str) -> frozenset[str] | None:
        """The spaces this user may read; None when that cannot be determined now."""
        ...

    async def chat_members(self, platform: str, chat_id: str) -> Sequence[str] | None:
        """The people (user ids, bots left out) in a chat; None when that cannot be determined now."""
        ...

    async def everyone_spaces(self) -> frozenset[str]:
        """Spaces every user of the tenant may read (as last known): the fail-closed answer."""
        ...

    # Optional: `async reader_principals(platform, user_id) -> frozenset[str] | None`: the principals a
    # page restricted below its space may name for this user (see `retrieval.pages.Page.readers`).

    def invalidate(self) -> None:
        """Forget what was precomputed (space members, visibility): re-read it on the next need."""
        ...


@dataclass(frozen=True)
class Scope:
    """The spaces one answer may use (None: every synced space) and whether access was only partly known."""

    spaces: tuple[str, ...] | None
    limited: bool = False  # True: fell back to what everyone may read
    # asker mode: principals a restricted page must name to be used (() : only pages open to their
    # whole space); None: no per-page filter (chat mode)
    readers: tuple[str, ...] | None = None

    @property
    def nothing(self) -> bool:
        return self.spaces is not None and not self.spaces


class AccessPolicy:
    def __init__(self, chat_spaces: Callable[[str], Sequence[str] | None], *, mode: str = "chat",
                 resolver: AccessResolver | None = None, cache_seconds: float = 300.0,
                 max_group_members: int = 500, clock: Callable[[], float] = time.monotonic) -> None:
        self.chat_spaces = chat_spaces
        self.mode = mode
        self.resolver = resolver
        self.cache_seconds = cache_seconds
        self.max_group_members = max_group_members
        self.clock = clock
        self._readable: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
        self._members: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}
        self._principals: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    def configured(self, chat_id: str) -> tuple[str, ...] | None:
        spaces = self.chat_spaces(chat_id)
        return tuple(spaces) if spaces is not None else None

    async def scope(self, platform: str, user_id: str, chat_id: str, *, group: bool) -> Scope:
        """The spaces an answer to `user_id` in `chat_id` may use. Never raises: unknown means less."""
        configured = self.configured(chat_id)
        if self.mode != "asker":
            return Scope(configured)
        readable: frozenset[str] | None = None
        if self.resolver is not None:
            try:
                readable = await (self._group(platform, user_id, chat_id) if group
                                  else self._user(platform, user_id))
            except Exception:  # noqa: BLE001 - whatever went wrong, answer from less, never from more
                log.exception("access: could not resolve %s user %s in chat %s", platform, user_id, chat_id)
                readable = None
        limited = readable is None
        if readable is None:
            ACCESS_FALLBACKS.labels(platform).inc()
            readable = await self._everyone()
        allowed = readable if configured is None else readable & frozenset(configured)
        # pages narrower than their space: in a direct message those naming the asker; in a group (all
        # members see the answer) or when the asker is unknown, none
        principals: frozenset[str] = frozenset()
        if not group and not limited:
            try:
                principals = await self._reader_principals(platform, user_id) or frozenset()
            except Exception:  # noqa: BLE001 - unknown: only pages open to their whole space
                log.exception("access: principals of %s user %s unknown", platform, user_id)
        return Scope(tuple(sorted(allowed)), limited, tuple(sorted(principals)))

    def invalidate(self) -> None:
        """A sync ran (spaces or their members may have changed): forget, and let the resolver re-read."""
        self.forget()
        if self.resolver is not None:
            self.resolver.invalidate()

    def forget(self) -> None:
        """Drop every cached readable set and member list (the resolver learnt something new)."""
        self._readable.clear()
        self._members.clear()
        self._principals.clear()

    # ----- resolution, cached -------------------------------------------------------------------
    async def _user(self, platform: str, user_id: str) -> frozenset[str] | None:
        if not user_id or self.resolver is None:
            return None
        key = (platform, user_id)
        hit = self._readable.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        spaces = await self.resolver.readable_spaces(platform, user_id)
        if spaces is not None:
            self._readable[key] = (self.clock() + self.cache_seconds, spaces)
        return spaces

    async def _reader_principals(self, platform: str, user_id: str) -> frozenset[str] | None:
        get = getattr(self.resolver, "reader_principals", None)
        if not user_id or get is None:
            return None
        key = (platform, user_id)
        hit = self._principals.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        found = await get(platform, user_id)
        if found is not None:
            self._principals[key] = (self.clock() + self.cache_seconds, found)
        return found

    async def _group(self, platform: str, user_id: str, chat_id: str) -> frozenset[str] | None:
        """What every member of the chat may read (the asker included, whether listed or not)."""
        assert self.resolver is not None
        key = (platform, chat_id)
        hit = self._members.get(key)
        if hit is not None and hit[0] > self.clock():
            members: Sequence[str] | None = hit[1]
        else:
            members = await self.resolver.chat_members(platform, chat_id)
            if members is None:
                return None
            self._members[key] = (self.clock() + self.cache_seconds, tuple(members))
        people = list(dict.fromkeys([user_id, *members]))
        if len(people) > self.max_group_members:
            log.info("access: chat %s has %d members (over %d): answering from what everyone may read",
                     chat_id, len(people), self.max_group_members)
            return None
        gate = asyncio.Semaphore(MEMBER_LOOKUPS_AT_ONCE)

        async def one(person: str) -> frozenset[str] | None:
            async with gate:
                return await self._user(platform, person)

        sets = await asyncio.gather(*(one(p) for p in people))
        everyone = await self._everyone()
        common: frozenset[str] | None = None
        for s in sets:
            s = s if s is not None else everyone  # someone unknown reads only what everyone reads
            common = s if common is None else common & s
        return common

    async def _everyone(self) -> frozenset[str]:
        if self.resolver is None:
            return frozenset()
        try:
            return await self.resolver.everyone_spaces()
        except Exception:  # noqa: BLE001
            log.exception("access: spaces readable by everyone unknown; answering from none")
            return frozenset()
