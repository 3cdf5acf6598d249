"""Who may read which wiki space, from Feishu's Open API with the app's tenant token.

Granularity is the wiki **space**: a bot cannot ask Feishu "may user X read document Y" (the drive
permission check `GET /drive/v1/permissions/:token/members/auth` answers for the caller only, i.e. the
app itself, unless we hold that user's OAuth token), but it can read who a space is shared with:

- `GET /open-apis/wiki/v2/spaces` → each space's `visibility`: `public` spaces are readable by everyone
  in the tenant;
- `GET /open-apis/wiki/v2/spaces/:space_id/members` → the grants of a private space: users (`openid`,
  `userid`, `unionid`, `email`), departments (`opendepartmentid`, sub-departments included) and chat
  groups (`openchat`);
- `GET /open-apis/im/v1/chats/:chat_id/members` expands a chat group grant to its people.

That much is precomputed into a `Snapshot` (per space, not per asker) and re-read in the background after
a sync and every `snapshot_seconds`. Per asker there remains who they are: `GET /contact/v3/users/:id`
(user id, union id, e-mail, departments) and `GET /contact/v3/departments/parent` for each department's
ancestors (cached); a Slack asker is first found by e-mail (`POST /contact/v3/users/batch_get_id`).

Below the space: the sync stores the readers of a page whose own permissions are narrower than its
space's (`connectors.feishu.wiki.source`, `principal()` spelling), and `principals()` gives the asker's
side of that match (ids, departments with their ancestors, chat groups known from the snapshot).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connectors.feishu.api import FeishuApi
from connectors.feishu.openapi import RATE_LIMITED, TOKEN_REJECTED, FeishuApiError

log = logging.getLogger(__name__)
USER_KEYS = {"openid": "open_id", "userid": "user_id", "unionid": "union_id", "email": "email"}
DEPARTMENT = "opendepartmentid"
CHAT = "openchat"
ROOT_DEPARTMENT = "0"  # the whole company
SNAPSHOT_CALLS_AT_ONCE = 4  # the wiki member API allows ~100 calls a minute; rate limits are waited out


@dataclass(frozen=True)
class Identity:
    """One Feishu user as space grants name them."""

    open_id: str
    user_id: str = ""
    union_id: str = ""
    email: str = ""
    departments: frozenset[str] = frozenset()  # open_department_ids, ancestors included

    def grant_keys(self) -> set[tuple[str, str]]:
        keys = {(kind, str(getattr(self, attr))) for kind, attr in USER_KEYS.items() if getattr(self, attr)}
        return keys | {(DEPARTMENT, d) for d in self.departments}


@dataclass
class Snapshot:
    """Every synced space's readers, as Feishu last told them."""

    everyone: frozenset[str]  # public spaces (and those shared with the whole company)
    grants: dict[tuple[str, str], set[str]]  # (member_type, member_id) -> spaces
    chats: dict[str, frozenset[str]]  # chat id granted some space -> open_ids of its members
    at: float = 0.0
    calls: int = 0  # Open API calls it took

    @property
    def needs_profile(self) -> bool:
        """True when some grant names users by something other than open_id, or a department."""
        return any(kind not in ("openid", CHAT) for kind, _ in self.grants)

    def readable(self, who: Identity) -> frozenset[str]:
        spaces = set(self.everyone)
        for key in who.grant_keys():
            spaces |= self.grants.get(key, set())
        for chat_id, members in self.chats.items():
            if who.open_id in members:
                spaces |= self.grants.get((CHAT, chat_id), set())
        return frozenset(spaces)


class FeishuAccess:
    """Readable spaces per Feishu user. The space readers are one `Snapshot`, re-read in the background
    (after `invalidate()`, from 80% of `snapshot_seconds`), so questions never wait for it, except the
    very first and when it is older than `max_age_factor` × `snapshot_seconds` (Feishu unreachable that
    long): then it is read again or, failing that, nothing is known (the caller fails closed)."""

    def __init__(self, api: FeishuApi, spaces: Sequence[str] = (), *, snapshot_seconds: float = 300.0,
                 max_age_factor: float = 12.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.spaces = tuple(spaces)  # the synced spaces (empty: every space the app sees)
        self.snapshot_seconds = snapshot_seconds
        self.max_age = snapshot_seconds * max_age_factor
        self.clock = clock
        self.on_refresh: Callable[[], None] | None = None  # e.g. drop answers cached from the old snapshot
        self._snapshot: Snapshot | None = None
        self._generation = 0  # bumped by invalidate(); a refresh begun before it does not count
        self._fresh_generation = -1
        self._refreshing: asyncio.Task[Snapshot] | None = None
        self._parents: dict[str, frozenset[str]] = {}  # department -> its ancestors
        self._identities: dict[str, tuple[float, Identity]] = {}  # open_id -> (expiry, profile)

    # ----- the precomputed part ---------------------------------------------------------------------
    async def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None or self.clock() - snap.at > self.max_age:
            return await asyncio.shield(self._start_refresh())
        if self._fresh_generation != self._generation or self.clock() - snap.at > 0.8 * self.snapshot_seconds:
            self._start_refresh()
        return snap

    def invalidate(self) -> None:
        """Spaces or their members may have changed (a sync ran): re-read them now, in the background."""
        self._generation += 1
        self._parents.clear()
        self._identities.clear()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next snapshot() starts it
        self._start_refresh()

    async def settled(self) -> None:
        """Wait for a refresh in progress, if any (its failure is logged, not raised)."""
        task = self._refreshing
        if task is not None:
            await asyncio.wait({task})

    def _start_refresh(self) -> asyncio.Task[Snapshot]:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh(self._generation))
            self._refreshing.add_done_callback(_log_failure)
        return self._refreshing

    async def _refresh(self, generation: int) -> Snapshot:
        snap = await self._read_snapshot()
        self._snapshot, self._fresh_generation = snap, generation
        if self.on_refresh is not None:
            self.on_refresh()
        return snap

    async def _read_snapshot(self) -> Snapshot:
        counter = [0]
        wanted = set(self.spaces)
        spaces = [s async for s in self._pages("wiki spaces", "/open-apis/wiki/v2/spaces", "items", counter)]
        everyone: set[str] = set()
        grants: dict[tuple[str, str], set[str]] = {}
        private = []
        for space in spaces:
            sid = str(space.get("space_id") or "")
            if not sid or (wanted and sid not in wanted):
                continue
            if space.get("visibility") == "public":
                everyone.add(sid)
            else:
                private.append(sid)
        gate = asyncio.Semaphore(SNAPSHOT_CALLS_AT_ONCE)

        async def members(sid: str) -> list[tuple[str, str]]:
            uri = f"/open-apis/wiki/v2/spaces/{quote(sid, safe='')}/members"
            async with gate:
                try:
                    return [(str(m.get("member_type") or ""), str(m.get("member_id") or ""))
                            async for m in self._pages(f"members of space {sid}", uri, "members", counter)]
                except FeishuApiError as exc:
                    if _passing(exc):
                        raise  # Feishu unreachable: keep the last snapshot rather than a lesser one
                    log.warning("feishu access: members of space %s unreadable (%s): readable by nobody "
                                "but its public readers until they are", sid, exc)
                    return []

        for sid, keys in zip(private, await asyncio.gather(*(members(sid) for sid in private)), strict=True):
            for key in keys:
                if key == (DEPARTMENT, ROOT_DEPARTMENT):
                    everyone.add(sid)
                grants.setdefault(key, set()).add(sid)
        chats = {}
        for kind, chat_id in [k for k in grants if k[0] == CHAT]:
            try:
                chats[chat_id] = frozenset(await self._chat_members(chat_id, counter))
            except FeishuApiError as exc:
                if _passing(exc):
                    raise
                log.warning("feishu access: chat %s (granted a space) unreadable (%s; is the bot in it?): "
                            "its members get nothing through it", chat_id, exc)
                chats[chat_id] = frozenset()
        snap = Snapshot(frozenset(everyone), grants, chats, at=self.clock(), calls=counter[0])
        log.info("feishu access: %d spaces, %d public, %d grants (%d Open API calls)", len(spaces),
                 len(everyone), sum(len(v) for v in grants.values()), snap.calls)
        return snap

    # ----- per asker ----------------------------------------------------------------------------
    async def readable_spaces(self, open_id: str) -> frozenset[str]:
        """The spaces this Feishu user may read. Raises when Feishu cannot tell (the caller fails closed)."""
        snap = await self.snapshot()
        who = await self.identity(open_id) if snap.needs_profile else Identity(open_id)
        return snap.readable(who)

    async def principals(self, open_id: str) -> frozenset[str]:
        """What a page restricted below its space may name for this user (`page_principals` below):
        the user's ids, their departments with their ancestors, and the chats granted some space that
        they are in. Raises when Feishu cannot tell (the caller falls back to pages open to their space)."""
        snap = await self.snapshot()
        who = await self.identity(open_id)
        keys = who.grant_keys() | {(CHAT, c) for c, members in snap.chats.items() if open_id in members}
        return frozenset(principal(kind, value) for kind, value in keys)

    async def everyone_spaces(self) -> frozenset[str]:
        """Spaces readable by everyone in the tenant; the last known set when Feishu cannot be reached."""
        try:
            return (await self.snapshot()).everyone
        except Exception as exc:  # noqa: BLE001
            log.warning("feishu access: space visibility unavailable (%s)", exc)
            return self._snapshot.everyone if self._snapshot is not None else frozenset()

    async def identity(self, open_id: str) -> Identity:
        hit = self._identities.get(open_id)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        data = await self.api.request_json(
            "user profile", "GET", f"/open-apis/contact/v3/users/{quote(open_id, safe='')}",
            query={"user_id_type": "open_id", "department_id_type": "open_department_id"})
        user = data.get("user") or {}
        departments: set[str] = set()
        for d in user.get("department_ids") or []:
            departments |= {str(d), *await self._ancestors(str(d))}
        who = Identity(open_id, str(user.get("user_id") or ""), str(user.get("union_id") or ""),
                       str(user.get("email") or "").lower(), frozenset(departments))
        self._identities[open_id] = (self.clock() + self.snapshot_seconds, who)
        return who

    async def open_id_by_email(self, email: str) -> str:
        """The Feishu user with this e-mail ('' if none)."""
        data = await self.api.request_json("user by e-mail", "POST",
                                           "/open-apis/contact/v3/users/batch_get_id",
                                           query={"user_id_type": "open_id"}, body={"emails": [email]})
        for item in data.get("user_list") or []:
            if str(item.get("email") or "").lower() == email.lower() and item.get("user_id"):
                return str(item["user_id"])
        return ""

    async def chat_members(self, chat_id: str) -> list[str]:
        return await self._chat_members(chat_id, [0])

    # ----- helpers ------------------------------------------------------------------------------
    async def _ancestors(self, department: str) -> frozenset[str]:
        if department not in self._parents:
            query = {"department_id": department, "department_id_type": "open_department_id"}
            found = [str(d.get("open_department_id") or "") async for d in self._pages(
                f"parents of department {department}", "/open-apis/contact/v3/departments/parent", "items",
                [0], query=query)]
            self._parents[department] = frozenset(d for d in found if d)
        return self._parents[department]

    async def _chat_members(self, chat_id: str, counter: list[int]) -> list[str]:
        uri = f"/open-apis/im/v1/chats/{quote(chat_id, safe='')}/members"
        return [str(m.get("member_id")) async for m in self._pages(
            f"members of chat {chat_id}", uri, "items", counter, query={"member_id_type": "open_id"},
            page_size=100) if m.get("member_id")]

    async def _pages(self, what: str, uri: str, key: str, counter: list[int], *,
                     query: dict[str, str] | None = None, page_size: int = 50) -> Any:
        token = ""
        while True:
            q = {**(query or {}), "page_size": str(page_size), **({"page_token": token} if token else {})}
            data = await self.api.request_json(what, "GET", uri, query=q)
            counter[0] += 1
            for item in data.get(key) or []:
                yield item
            token = str(data.get("page_token") or "")
            if not data.get("has_more") or not token:
                return


def principal(member_type: str, member_id: str) -> str:
    """One reader as a page's `readers` and an asker's principals both spell it: `openid:ou_…`,
    `opendepartmentid:od_…`, `openchat:oc_…`, `userid:…`, `unionid:…`, `email:…` (lower case)."""
    value = member_id.lower() if member_type == "email" else member_id
    return f"{member_type}:{value}"


def _passing(exc: FeishuApiError) -> bool:
    """A failure that says nothing about the resource (network, server error, rate limit, token)."""
    return exc.code in (-1, RATE_LIMITED, *TOKEN_REJECTED) or (exc.status or 0) >= 500


def _log_failure(task: asyncio.Task[Snapshot]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("feishu access: background refresh failed (%s); keeping the last snapshot",
                    task.exception())
