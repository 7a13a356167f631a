"""One SQLite file as an ocsipersist backend.

Every call runs on one thread of its own per process, holding the process's connection, so the
event loop never waits for the disk. The file is in WAL mode: worker processes each open it
and share it, readers never block the writer, and ``update`` takes the write lock first
(``BEGIN IMMEDIATE``) so a read-modify-write is atomic across processes.

The connection and the thread are made on first use and again after a ``fork``: the master
process builds (and checks) the configuration before it forks the workers, and a SQLite
connection must not cross a fork.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: How long a write waits for another process's transaction before failing.
BUSY_TIMEOUT_MS = 10_000

SCHEMA = ("CREATE TABLE IF NOT EXISTS ocsipersist (tbl TEXT NOT NULL, key TEXT NOT NULL, "
          "value TEXT NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID")


def open_database(path: str) -> sqlite3.Connection:
    """Open (creating) the file in WAL mode with the table; ``sqlite3.Error`` when it cannot."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; safe in WAL
        conn.execute(SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = -1
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    def describe(self) -> str:
        return self.path

    # -- the thread ------------------------------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        if self._pid != os.getpid() or self._thread is None:
            self._pid = os.getpid()
            self._conn = None  # a parent's connection is never used (nor closed) here
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="ocsipersist-sqlite")
        return self._thread

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_database(self.path)
        return self._conn

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._executor()
        return await asyncio.get_running_loop().run_in_executor(executor, lambda: work(self._db()))

    # -- the calls -------------------------------------------------------------------------------
    async def get(self, table: str, key: str) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM ocsipersist WHERE tbl = ? AND key = ?",
                             (table, key)).fetchone()
            return None if row is None else str(row[0])
        return await self._run(work)

    async def set(self, table: str, key: str, value: str) -> None:
        await self._run(lambda db: db.execute(
            "INSERT INTO ocsipersist (tbl, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value", (table, key, value)))

    async def delete(self, table: str, key: str) -> None:
        await self._run(lambda db: db.execute(
            "DELETE FROM ocsipersist WHERE tbl = ? AND key = ?", (table, key)))

    async def update(self, table: str, key: str,
                     change: Callable[[str | None], str | None]) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: no other writer in between
            try:
                row = db.execute("SELECT value FROM ocsipersist WHERE tbl = ? AND key = ?",
                                 (table, key)).fetchone()
                new = change(None if row is None else str(row[0]))
                if new is None:
                    db.execute("DELETE FROM ocsipersist WHERE tbl = ? AND key = ?", (table, key))
                else:
                    db.execute("INSERT INTO ocsipersist (tbl, key, value) VALUES (?, ?, ?) "
                               "ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
                               (table, key, new))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return new
        return await self._run(work)

    async def page(self, table: str, after: str | None, limit: int) -> list[tuple[str, str]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, str]]:
            if after is None:
                rows = db.execute("SELECT key, value FROM ocsipersist WHERE tbl = ? "
                                  "ORDER BY key LIMIT ?", (table, limit))
            else:
                rows = db.execute("SELECT key, value FROM ocsipersist WHERE tbl = ? AND key > ? "
                                  "ORDER BY key LIMIT ?", (table, after, limit))
            return [(str(k), str(v)) for k, v in rows]
        return await self._run(work)

    async def length(self, table: str) -> int:
        return await self._run(lambda db: int(db.execute(
            "SELECT count(*) FROM ocsipersist WHERE tbl = ?", (table,)).fetchone()[0]))

    async def clear(self, table: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM ocsipersist WHERE tbl = ?", (table,)))

    async def tables(self) -> dict[str, int]:
        return await self._run(lambda db: {str(t): int(n) for t, n in db.execute(
            "SELECT tbl, count(*) FROM ocsipersist GROUP BY tbl")})

    async def size(self) -> int | None:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    async def close(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            conn = self._conn
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
            self._thread.shutdown(wait=False)
        self._conn = None
        self._thread = None
