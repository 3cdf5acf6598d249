"""The access policy on its own: scoping rules, caching and failing closed, with an in-memory resolver."""

from __future__ import annotations

from collections.abc import Sequence

from bot.answering.access import AccessPolicy


class Directory:
    """An `AccessResolver` kept in memory; counts lookups; `down` makes every lookup fail."""

    def __init__(self) -> None:
        self.readable = {"alice": frozenset({"eng", "nda"}), "bob": frozenset({"eng", "hr"})}
        self.members = {"team": ["alice", "bob"]}
        self.everyone = frozenset({"eng"})
        self.lookups = 0
        self.down = False
        self.invalidated = 0

    async def readable_spaces(self, platform: str, user_id: str) -> frozenset[str] | None:
        self.lookups += 1
        if self.down:
            raise ConnectionError("directory down")
        return self.readable.get(user_id)

    async def chat_members(self, platform: str, chat_id: str) -> Sequence[str] | None:
        if self.down:
            raise ConnectionError("directory down")
        return self.members.get(chat_id)

    async def everyone_spaces(self) -> frozenset[str]:
        return self.everyone

    def invalidate(self) -> None:
        self.invalidated += 1


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def policy(directory: Directory, chats: dict[str, list[str]] | None = None, **kw: object) -> AccessPolicy:
    return AccessPolicy((chats or {}).get, mode="asker", resolver=directory, **kw)  # type: ignore[arg-type]


async def test_chat_mode_uses_only_the_configured_spaces():
    p = AccessPolicy({"c1": ["hr"]}.get, mode="chat", resolver=Directory())
    assert (await p.scope("feishu", "alice", "c1", group=False)).spaces == ("hr",)
    assert (await p.scope("feishu", "alice", "c2", group=False)).spaces is None


async def test_asker_mode_is_bounded_by_the_chat_configuration():
    p = policy(Directory(), {"c1": ["hr", "nda"]})
    assert (await p.scope("feishu", "alice", "c1", group=False)).spaces == ("nda",)
    assert (await p.scope("feishu", "alice", "dm", group=False)).spaces == ("eng", "nda")


async def test_a_group_gets_what_every_member_may_read():
    p = policy(Directory())
    assert (await p.scope("feishu", "alice", "team", group=True)).spaces == ("eng",)


async def test_failures_fall_back_to_everyone_and_are_not_cached():
    d = Directory()
    p = policy(d)
    d.down = True
    scope = await p.scope("feishu", "bob", "dm", group=False)
    assert scope.spaces == ("eng",) and scope.limited
    d.down = False
    assert (await p.scope("feishu", "bob", "dm", group=False)).spaces == ("eng", "hr")


async def test_unknown_everything_means_nothing():
    d = Directory()
    d.down, d.everyone = True, frozenset()
    scope = await policy(d).scope("feishu", "bob", "dm", group=False)
    assert scope.nothing and scope.limited


async def test_readable_spaces_are_cached_until_they_expire_or_are_invalidated():
    d, clock = Directory(), Clock()
    p = policy(d, cache_seconds=60, clock=clock)
    await p.scope("feishu", "bob", "dm", group=False)
    await p.scope("feishu", "bob", "dm", group=False)
    assert d.lookups == 1
    clock.now = 61
    await p.scope("feishu", "bob", "dm", group=False)
    assert d.lookups == 2
    p.invalidate()
    await p.scope("feishu", "bob", "dm", group=False)
    assert d.lookups == 3 and d.invalidated == 1


async def test_a_group_too_big_to_check_gets_what_everyone_may_read():
    d = Directory()
    d.members["all-hands"] = [f"u{i}" for i in range(20)]
    scope = await policy(d, max_group_members=10).scope("feishu", "bob", "all-hands", group=True)
    assert scope.spaces == ("eng",) and scope.limited and d.lookups == 0
