"""A PostgreSQL database as an ocsipersist backend, through an asyncpg pool.

Several ocsi servers (and their workers) share the one table, so every write is visible to all
at once. ``update`` reads the row ``FOR UPDATE`` in a transaction. When the row does not exist
yet, the insert ``ON CONFLICT DO NOTHING`` tells whether another server created it first, and
then the read is done again under the lock: no increment is lost between servers.

The pool belongs to one process and one event loop. It is made on first use, and again after a
fork or on another loop: the configuration is checked, with a connection of its own, before
workers are forked. When the server goes away, the calls fail (the request gets a 500), and the
pool reconnects once it is back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

SCHEMA = ("CREATE TABLE IF NOT EXISTS ocsipersist (tbl text NOT NULL, key text COLLATE \"C\" NOT NULL, "
          "value text NOT NULL, PRIMARY KEY (tbl, key))")
#: Seconds to reach the server, for the check at load and for each new pooled connection.
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Where:
    """Ocsigen's ``<database>`` attributes."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str = "ocsipersist"
    unix_domain_socket_dir: str | None = None
    size_conn_pool: int = 16

    def connect_args(self) -> dict[str, Any]:
        host = self.unix_domain_socket_dir or self.host
        return {"host": host, "port": self.port, "user": self.user, "password": self.password,
                "database": self.database, "timeout": CONNECT_TIMEOUT}

    def describe(self) -> str:
        place = self.unix_domain_socket_dir or f"{self.host or 'localhost'}:{self.port or 5432}"
        return f"{self.user + '@' if self.user else ''}{place}/{self.database}"


async def check(where: Where) -> None:
    """Connect once and make the table: raises what asyncpg raises when it cannot."""
    conn = await asyncpg.connect(**where.connect_args())
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


class PgsqlBackend:
    name = "pgsql"

    def __init__(self, where: Where) -> None:
        self.where = where
        self._pool: asyncpg.Pool | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._making: asyncio.Lock | None = None

    def describe(self) -> str:
        return self.where.describe()

    async def pool(self) -> asyncpg.Pool:
        owner = (os.getpid(), asyncio.get_running_loop())
        if self._pool is not None and self._owner == owner:
            return self._pool
        if self._making is None or self._owner != owner:
            self._making, self._owner, self._pool = asyncio.Lock(), owner, None
        async with self._making:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    min_size=1, max_size=self.where.size_conn_pool, **self.where.connect_args())
                async with self._pool.acquire() as conn:
                    await conn.execute(SCHEMA)
        return self._pool

    async def get(self, table: str, key: str) -> str | None:
        pool = await self.pool()
        value: str | None = await pool.fetchval(
            "SELECT value FROM ocsipersist WHERE tbl = $1 AND key = $2", table, key)
        return value

    async def set(self, table: str, key: str, value: str) -> None:
        pool = await self.pool()
        await pool.execute("INSERT INTO ocsipersist (tbl, key, value) VALUES ($1, $2, $3) "
                           "ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
                           table, key, value)

    async def delete(self, table: str, key: str) -> None:
        pool = await self.pool()
        await pool.execute("DELETE FROM ocsipersist WHERE tbl = $1 AND key = $2", table, key)

    async def update(self, table: str, key: str,
                     change: Callable[[str | None], str | None]) -> str | None:
        pool = await self.pool()
        async with pool.acquire() as conn, conn.transaction():
            while True:
                old = await conn.fetchval("SELECT value FROM ocsipersist WHERE tbl = $1 AND "
                                          "key = $2 FOR UPDATE", table, key)
                new = change(old)
                if old is not None:
                    if new is None:
                        await conn.execute("DELETE FROM ocsipersist WHERE tbl = $1 AND key = $2",
                                           table, key)
                    else:
                        await conn.execute("UPDATE ocsipersist SET value = $3 WHERE tbl = $1 "
                                           "AND key = $2", table, key, new)
                    return new
                if new is None:
                    return None
                made = await conn.fetchval("INSERT INTO ocsipersist (tbl, key, value) VALUES "
                                           "($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                                           table, key, new)
                if made is not None:
                    return new
                # another server inserted it between our read and our insert: read it locked

    async def page(self, table: str, after: str | None, limit: int) -> list[tuple[str, str]]:
        pool = await self.pool()
        if after is None:
            rows = await pool.fetch("SELECT key, value FROM ocsipersist WHERE tbl = $1 "
                                    "ORDER BY key LIMIT $2", table, limit)
        else:
            rows = await pool.fetch("SELECT key, value FROM ocsipersist WHERE tbl = $1 AND "
                                    "key > $2 ORDER BY key LIMIT $3",
                                    table, after, limit)
        return [(r["key"], r["value"]) for r in rows]

    async def length(self, table: str) -> int:
        pool = await self.pool()
        return int(await pool.fetchval("SELECT count(*) FROM ocsipersist WHERE tbl = $1", table))

    async def clear(self, table: str) -> None:
        pool = await self.pool()
        await pool.execute("DELETE FROM ocsipersist WHERE tbl = $1", table)

    async def tables(self) -> dict[str, int]:
        pool = await self.pool()
        rows = await pool.fetch("SELECT tbl, count(*) AS n FROM ocsipersist GROUP BY tbl")
        return {r["tbl"]: int(r["n"]) for r in rows}

    async def size(self) -> int | None:
        pool = await self.pool()
        size = await pool.fetchval("SELECT pg_total_relation_size('ocsipersist')")
        return None if size is None else int(size)

    async def close(self) -> None:
        pool = self._pool
        if pool is not None and self._owner == (os.getpid(), asyncio.get_running_loop()):
            await pool.close()
        self._pool = None
