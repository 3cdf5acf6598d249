"""What `[access] mode = "asker"` adds to a question, and how many Feishu Open API calls it makes.

Against the fake Feishu on 127.0.0.1 (real lark-oapi; the HTTP round trips are real, Feishu's own
server time is not in it): SPACES wiki spaces, a quarter of them public, the rest shared with a few
users, a department (users sit two levels below it) and a chat group. Timed: the scope decision of
`AccessPolicy` (what `conversation.respond` awaits before retrieval) for

- a warm cache (the same asker again),
- a cold asker (their profile and their departments' ancestors read from Feishu),
- a cold group of GROUP people (members listed, then each member as a cold asker),
- the space-readers snapshot (what a sync invalidates; re-read on the next question).

Run: python bench/access_bench.py [--spaces 40] [--group 20] [--askers 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answering.access import AccessPolicy
from bot.app.access import WikiAccess
from connectors.feishu.access import FeishuAccess
from connectors.feishu.api import FeishuApi
from tests.fakes.feishu import FakeFeishu


def populate(fake: FakeFeishu, root: Path, spaces: int, users: int) -> list[str]:
    d = fake.directory  # type: ignore[attr-defined]
    for i in range(spaces):
        folder = root / f"space{i:03d}"
        folder.mkdir(parents=True)
        (folder / "_space.json").write_text(json.dumps({"visibility": "public" if i % 4 == 0 else "private"}))
        if i % 4:
            d.share(f"space{i:03d}", "opendepartmentid", f"od-dept{i % 5}")
            d.share(f"space{i:03d}", "openid", f"ou_user{i:05d}")
            d.share(f"space{i:03d}", "openchat", "oc_project")
    fake.wiki.root = root  # type: ignore[attr-defined]
    ids = []
    for u in range(users):
        uid = f"ou_user{u:05d}"
        d.add_user(uid, f"user {u}", email=f"user{u}@example.com", departments=[f"od-team{u % 10}"])
        ids.append(uid)
    for t in range(10):
        d.parents[f"od-team{t}"] = f"od-dept{t % 5}"
    for k in range(5):
        d.parents[f"od-dept{k}"] = "0"
    d.chats["oc_project"] = ids[:8]
    return ids


def ms(xs: list[float]) -> str:
    xs = sorted(xs)

    def one(x: float) -> str:
        return f"{x * 1e6:.0f} µs" if x < 1e-3 else f"{x * 1000:.1f} ms"

    return f"p50 {one(statistics.median(xs))}, p95 {one(xs[int(0.95 * (len(xs) - 1))])}"


async def main(spaces: int, group: int, askers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeFeishu() as fake:
        ids = populate(fake, Path(tmp) / "wiki", spaces, max(askers, group) + 1)
        feishu = FeishuAccess(FeishuApi(fake.app_id, fake.app_secret, fake.url), ())
        resolver = WikiAccess(feishu)
        policy = AccessPolicy(lambda chat: None, mode="asker", resolver=resolver)
        try:
            before = len(fake.requests)
            t = time.perf_counter()
            snap = await feishu.snapshot()
            print(f"space-readers snapshot: {spaces} spaces, {(time.perf_counter() - t) * 1000:.0f} ms, "
                  f"{snap.calls} Open API calls ({len(fake.requests) - before} requests incl. the token)")

            cold, calls = [], []
            for uid in ids[:askers]:
                before = len(fake.requests)
                t = time.perf_counter()
                await policy.scope("feishu", uid, "dm", group=False)
                cold.append(time.perf_counter() - t)
                calls.append(len(fake.requests) - before)
            print(f"cold asker ({askers}): {ms(cold)}; Open API calls per asker: "
                  f"{min(calls)}–{max(calls)} (profile + ancestors of each department not yet known)")

            warm = []
            before = len(fake.requests)
            for _ in range(5):
                for uid in ids[:askers]:
                    t = time.perf_counter()
                    await policy.scope("feishu", uid, "dm", group=False)
                    warm.append(time.perf_counter() - t)
            print(f"warm asker: {ms(warm)}; Open API calls: {len(fake.requests) - before}")

            fake.directory.chats["oc_bench"] = ids[:group]  # type: ignore[attr-defined]
            policy.invalidate()  # as after a sync: the readers are re-read in the background
            await feishu.settled()
            before = len(fake.requests)
            t = time.perf_counter()
            scope = await policy.scope("feishu", ids[0], "oc_bench", group=True)
            print(f"cold group of {group}: {(time.perf_counter() - t) * 1000:.0f} ms, "
                  f"{len(fake.requests) - before} Open API calls, {len(scope.spaces or ())} spaces in common")
            t = time.perf_counter()
            await policy.scope("feishu", ids[0], "oc_bench", group=True)
            print(f"warm group of {group}: {(time.perf_counter() - t) * 1000:.2f} ms")
        finally:
            feishu.api.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--spaces", type=int, default=40)
    ap.add_argument("--group", type=int, default=20)
    ap.add_argument("--askers", type=int, default=30)
    a = ap.parse_args()
    asyncio.run(main(a.spaces, a.group, a.askers))
