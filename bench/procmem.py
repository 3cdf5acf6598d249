"""Reading processes' memory from /proc, and a thread that samples it periodically (Linux).

Shared by the benchmarks that measure memory over a process tree (serve_rss_bench, serve_ack_bench) or over
the index's compaction children (compaction_bench).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

MiB = 2**20


def kb_fields(path: str, keys: tuple[str, ...]) -> dict[str, int]:
    """Fields `Key:  N kB` of a /proc file, in bytes (empty if the process is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in keys:
            out[k] = int(v.split()[0]) * 1024
    return out


def cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def children_map() -> dict[int, list[int]]:
    """Every process's children, by parent pid."""
    kids: dict[int, list[int]] = defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids[ppid].append(int(d))
    return kids


def tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    kids, out, todo = children_map(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class Periodic:
    """A daemon thread calling `sample()` every `interval` seconds while in a `with` block."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def __enter__(self) -> Any:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
