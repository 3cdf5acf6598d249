"""Small per-replica state in one SQLite file: conversation turns and question-rate counters.

(What replicas must agree on — handled events, the sync lease — is in `bot.infra.coordination`.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from bot.answering.models import Turn


class StateDB:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS turns (
                    conv TEXT NOT NULL, at REAL NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS turns_conv ON turns (conv, at);
                CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at REAL NOT NULL);
                CREATE INDEX IF NOT EXISTS hits_key ON hits (key, at);
                """
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ----- conversations ------------------------------------------------------------------------
    def add_turn(self, conv: str, question: str, answer: str) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO turns (conv, at, question, answer) VALUES (?, ?, ?, ?)",
                               (conv, time.time(), question, answer))

    def history(self, conv: str, limit: int = 4) -> tuple[Turn, ...]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT question, answer FROM turns WHERE conv = ? ORDER BY at DESC LIMIT ?", (conv, limit)
            ).fetchall()
        return tuple(Turn(q, a) for q, a in reversed(rows))

    # ----- rate limits --------------------------------------------------------------------------
    def hit(self, key: str, window_seconds: float, limit: int) -> bool:
        """Count one use of `key`; False if that would exceed `limit` uses in the window."""
        now = time.time()
        with self._lock:
            self._conn.execute("DELETE FROM hits WHERE key = ? AND at < ?", (key, now - window_seconds))
            (n,) = self._conn.execute("SELECT COUNT(*) FROM hits WHERE key = ?", (key,)).fetchone()
            if n >= limit:
                return False
            self._conn.execute("INSERT INTO hits (key, at) VALUES (?, ?)", (key, now))
            return True
