"""What several `serve` replicas must agree on: which events were handled, and who runs the sync.

One replica: a local SQLite file does it (safe across processes on one machine).
Several replicas behind one Qdrant server: Redis (`REDIS_URL`), with a lease
that expires, so a replica that dies mid-sync blocks the next run for at most
one lease period.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol


class Coordinator(Protocol):
    def claim(self, key: str, ttl_seconds: float) -> bool:
        """True for the first claim of `key` across all replicas (until it expires)."""
        ...

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew the lease `name` for `owner`; False while another owner holds it."""
        ...

    def release_lease(self, name: str, owner: str) -> None: ...

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease `name` now, if anyone (for logs and /healthz)."""
        ...

    def close(self) -> None: ...


class LocalCoordinator:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(
                "CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, expires REAL NOT NULL);"
                "CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);"
            )

    def claim(self, key: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM seen WHERE key = ? AND expires < ?", (key, now))
                cur = self._conn.execute("INSERT OR IGNORE INTO seen (key, expires) VALUES (?, ?)",
                                         (key, now + ttl_seconds))
                if int(now) % 61 == 0:
                    self._conn.execute("DELETE FROM seen WHERE expires < ?", (now,))
            finally:
                self._conn.execute("COMMIT")
            return cur.rowcount == 1

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT owner, expires FROM leases WHERE name = ?", (name,)).fetchone()
                if row is None or row[1] < now or row[0] == owner:
                    self._conn.execute("INSERT OR REPLACE INTO leases (name, owner, expires) VALUES (?, ?, ?)",
                                       (name, owner, now + ttl_seconds))
                    return True
                return False
            finally:
                self._conn.execute("COMMIT")

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def lease_holder(self, name: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT owner FROM leases WHERE name = ? AND expires >= ?",
                                     (name, time.time())).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = ("local v = redis.call('get', KEYS[1]) "
          "if v == false then return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 "
          "elseif v == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 else return 0 end")


class RedisCoordinator:
    def __init__(self, url: str, prefix: str = "wikibot") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix
        self._redis.ping()

    def claim(self, key: str, ttl_seconds: float) -> bool:
        return bool(self._redis.set(f"{self._prefix}:seen:{key}", b"1", nx=True, px=int(ttl_seconds * 1000)))

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        return bool(self._redis.eval(_RENEW, 1, f"{self._prefix}:lease:{name}", owner, int(ttl_seconds * 1000)))

    def release_lease(self, name: str, owner: str) -> None:
        self._redis.eval(_RELEASE, 1, f"{self._prefix}:lease:{name}", owner)

    def lease_holder(self, name: str) -> str | None:
        value = self._redis.get(f"{self._prefix}:lease:{name}")
        return value.decode() if isinstance(value, bytes) else value

    def close(self) -> None:
        self._redis.close()


def make_coordinator(redis_url: str, data_dir: Path, prefix: str = "wikibot") -> Coordinator:
    if redis_url:
        return RedisCoordinator(redis_url, prefix)
    return LocalCoordinator(Path(data_dir) / "coordination.sqlite")
