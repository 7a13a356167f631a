"""``<ratelimit shared="cluster">``: the leaky bucket of :mod:`.bucket` kept in the cluster's
PostgreSQL database, so that every server of a cluster counts against one limit.

The database is the one the core publishes as ``settings.cluster_database``
(:class:`ocsi.ClusterDatabase`; ocsipersist-pgsql publishes its own): the public setting, so
this module knows nothing of the extension that holds it. Each process keeps its own small
asyncpg pool per database and event loop (a pool cannot cross a ``fork`` or a loop).

One statement per request, one round trip: an ``INSERT … ON CONFLICT DO UPDATE`` computes the
new excess from the row's under the row lock, keeps the row as it was when the request is
refused, and returns the row with the time it used. The time is the database's
(``clock_timestamp()``): one clock for the whole cluster, whatever the machines' clocks say.

Rows are removed once they are worth nothing (their excess has leaked: the key would start
afresh anyway), by each process at most once a minute. So the table holds the keys seen in the
last ``(burst + 1) / rate`` seconds plus a minute; it is bounded in time, not by ``size``.

When the database cannot be reached, requests go through (a limit must not take a site down
with its database), and an error is logged at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from typing import Any

from ocsi import ClusterDatabase

from .bucket import ACCEPT, UNIT, Verdict

log = logging.getLogger("ocsi.ext.ratelimit")

SCHEMA = ("CREATE TABLE IF NOT EXISTS ocsi_ratelimit (zone text NOT NULL, key bytea NOT NULL, "
          "last_us bigint NOT NULL, excess bigint NOT NULL, PRIMARY KEY (zone, key))")
_EXCESS = ("greatest(0, t.excess - floor($3::numeric * greatest(0, EXCLUDED.last_us - t.last_us)"
           " / 1000000)::bigint + 1000000)")
TAKE = f"""
WITH c AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us)
INSERT INTO ocsi_ratelimit AS t (zone, key, last_us, excess) SELECT $1, $2, c.us, 0 FROM c
ON CONFLICT (zone, key) DO UPDATE SET
  excess = CASE WHEN {_EXCESS} <= $4 THEN {_EXCESS} ELSE t.excess END,
  last_us = CASE WHEN {_EXCESS} <= $4 THEN EXCLUDED.last_us ELSE t.last_us END
RETURNING t.last_us, t.excess, (SELECT us FROM c)
"""
EXPIRE = ("DELETE FROM ocsi_ratelimit WHERE zone = $1 AND last_us < "
          "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint - "
          "floor((excess + 1000000)::numeric * 1000000 / $2)::bigint")
#: Seconds between two removals of worthless rows (per process), and between two error lines.
EVERY = 60.0
#: Connections of a process's pool: one statement per request, held for one round trip.
POOL_SIZE = 10


class Pools:
    """One asyncpg pool per database, process and event loop, shared by every zone; made on
    first use (the configuration is read before the loop runs, and workers fork after)."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, int, asyncio.AbstractEventLoop], Any] = {}
        self._making: dict[tuple[str, int, asyncio.AbstractEventLoop], asyncio.Lock] = {}

    async def get(self, database: ClusterDatabase) -> Any:
        loop = asyncio.get_running_loop()
        key = (repr(sorted(database.connect_args.items())), os.getpid(), loop)
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        for old in [k for k in self._pools if k[1] != key[1] or k[2].is_closed()]:
            del self._pools[old]  # another process's or a finished loop's: not ours to close
            self._making.pop(old, None)
        lock = self._making.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._pools:
                import asyncpg  # the cluster mode's dependency (the "cluster" extra)

                self._pools[key] = await asyncpg.create_pool(
                    min_size=1, max_size=POOL_SIZE, **database.connect_args)
        return self._pools[key]


POOLS = Pools()


class ClusterBucket:
    """The limit of one ``<ratelimit shared="cluster">``, in the table ``ocsi_ratelimit``.

    ``database`` is the cluster's (``settings.cluster_database``); the statements go through
    this process's pool for it (:class:`Pools`).
    """

    def __init__(self, database: ClusterDatabase, zone: str, rate: float, burst: int, delay: float,
                 digest: Any) -> None:
        self.database = database
        self.zone = zone
        self._rate = max(1, round(rate * UNIT))
        self.burst = burst * UNIT
        self.delay = round(delay * UNIT)
        self._digest = digest
        self._ready: object = None  # the pool the table was made with
        self._expired = 0.0
        self._complained = -math.inf

    async def _pool(self) -> Any:
        pool = await POOLS.get(self.database)
        if self._ready is not pool:
            try:
                await pool.execute(SCHEMA)
            except Exception:  # noqa: BLE001 - another server made it at the same moment
                await pool.execute(SCHEMA)
            self._ready = pool
        return pool

    async def take(self, key: str) -> Verdict:
        try:
            pool = await self._pool()
            last, stored, now = await pool.fetchrow(TAKE, self.zone, self._digest(key),
                                                    self._rate, self.burst)
            if time.monotonic() - self._expired > EVERY:
                self._expired = time.monotonic()
                await pool.execute(EXPIRE, self.zone, self._rate)
        except Exception as exc:  # noqa: BLE001 - the database is down: let requests through
            if time.monotonic() - self._complained > EVERY:
                self._complained = time.monotonic()
                log.error("ratelimit zone %s: the cluster's database cannot be reached, requests "
                          "are not limited: %s: %s", self.zone, type(exc).__name__, exc)
            return ACCEPT
        if last != now:  # the row was left as it was: refused
            excess = max(0, stored - self._rate * max(0, now - last) // UNIT + UNIT)
            wait = (excess - self.burst) / self._rate
            return Verdict(False, retry_after=max(1, math.ceil(wait)), excess=excess / UNIT)
        if stored <= self.delay:
            return ACCEPT
        return Verdict(True, delay=(stored - self.delay) / self._rate, excess=stored / UNIT)
