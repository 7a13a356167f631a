"""A cluster's ACME storage in PostgreSQL, when the configuration has a cluster database.

The database is the one an extension publishes as ``settings.cluster_database``
(:meth:`ocsi.LoadContext.publish_cluster_database`): ocsipersist-pgsql does, for its
``<database>``. The core neither imports nor inspects the extension.

Every server keeps its files under ``<datadir>/acme/`` as before (they are what it serves from)
and mirrors them with the table ``ocsi_acme`` of the ocsipersist database:

- the account key, certificates and states written by the server that orders are put in the
  table; every server pulls what changed every two seconds, at once when told by
  ``NOTIFY ocsi_acme``, and writes it to its files (a certificate is then in use there within
  :data:`~.serving.REFRESH_INTERVAL`);
- challenge answers too, so whichever server of the cluster the CA reaches answers it;
- an advisory lock per name set makes one server order while the others wait and then load
  what it stored.

The ``acme`` library runs in a thread: its puts go through the server's event loop
(:meth:`put` blocks that thread only).

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Any

from .store import AcmeStore, write_atomically

log = logging.getLogger("ocsi.acme")

SCHEMA = """CREATE TABLE IF NOT EXISTS ocsi_acme (
    key text PRIMARY KEY, value bytea, updated timestamptz NOT NULL DEFAULT now())"""
CHANNEL = "ocsi_acme"
PULL_INTERVAL = 2.0
#: Kept on the server only: the CA's bundle is made from this server's own ``ca=`` file.
_LOCAL_ONLY = ("ca-bundle.pem",)


def _lock_id(names: Sequence[str]) -> int:
    return int.from_bytes(hashlib.sha256(" ".join(names).encode()).digest()[:8], "big", signed=True)


class SharedStorage:
    def __init__(self, connect_args: dict[str, Any], store: AcmeStore) -> None:
        self.connect_args = connect_args
        self.store = store
        self.loop: asyncio.AbstractEventLoop | None = None
        self._conn: Any = None
        self._lock_conn: Any = None
        self._wake = asyncio.Event()
        self._io = asyncio.Lock()

    async def open(self) -> None:
        import asyncpg

        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()  # of this loop
        self._conn = await asyncpg.connect(**self.connect_args)
        await self._conn.execute(SCHEMA)
        self._lock_conn = await asyncpg.connect(**self.connect_args)
        await self._lock_conn.add_listener(CHANNEL, lambda *args: self._wake.set())

    async def reopen(self) -> None:
        """New connections after a failure (the database restarted…); quiet if it is still down."""
        await self.close()
        try:
            await self.open()
        except Exception as exc:  # noqa: BLE001 - tried again at the next failure
            log.warning("ACME: cannot reconnect to the shared storage: %s", exc)

    async def close(self) -> None:
        for conn in (self._lock_conn, self._conn):
            if conn is not None:
                try:
                    await conn.close(timeout=5)
                except Exception:  # noqa: BLE001 - closing on the way out
                    pass
        self._conn = self._lock_conn = None

    async def account_key(self) -> None:
        """One account for the cluster: the first server's key, taken by the others."""
        async with self._io:
            row = await self._conn.fetchrow("SELECT value FROM ocsi_acme WHERE key = 'account.key'")
            if row is None:
                pem = self.store.account_key()
                await self._conn.execute(
                    "INSERT INTO ocsi_acme (key, value) VALUES ('account.key', $1) "
                    "ON CONFLICT (key) DO NOTHING", pem)
                row = await self._conn.fetchrow(
                    "SELECT value FROM ocsi_acme WHERE key = 'account.key'")
            self._write("account.key", bytes(row["value"]))

    async def push_held(self) -> int:
        """A server joining the cluster (at start, or by a reload that adds the database) with
        certificates of its own: those the table lacks are put there, never replacing the
        cluster's (the others then serve them instead of ordering their own). How many."""
        from cryptography import x509

        base = os.path.join(self.store.root, "certs")
        async with self._io:
            known = {row["key"] for row in await self._conn.fetch("SELECT key FROM ocsi_acme")}
        rows: list[tuple[str, bytes]] = []
        now = datetime.datetime.now(datetime.timezone.utc)
        for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            if f"certs/{entry}/certificate.pem" in known:
                continue
            try:
                with open(os.path.join(base, entry, "certificate.pem"), "rb") as f:
                    pem = f.read()
                if x509.load_pem_x509_certificates(pem)[0].not_valid_after_utc <= now:
                    continue  # nothing worth sharing
                rows.append((f"certs/{entry}/certificate.pem", pem))
                with open(os.path.join(base, entry, "state.json"), "rb") as f:
                    rows.append((f"certs/{entry}/state.json", f.read()))
            except (OSError, ValueError, IndexError):
                continue
        if rows:
            async with self._io:
                await self._conn.executemany(
                    "INSERT INTO ocsi_acme (key, value) VALUES ($1, $2) "
                    "ON CONFLICT (key) DO NOTHING", rows)
                await self._conn.execute(f"NOTIFY {CHANNEL}")
        return sum(key.endswith("certificate.pem") for key, _ in rows)

    async def pull_loop(self) -> None:
        while True:
            try:
                await self.pull()
            except Exception as exc:  # noqa: BLE001 - the database may be back next round
                log.warning("ACME: cannot read the shared storage: %s", exc)
                await self.reopen()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), PULL_INTERVAL)
            except asyncio.TimeoutError:
                pass

    async def pull(self) -> None:
        """Write to the files what the table holds; drop the challenges it no longer has."""
        async with self._io:
            rows = await self._conn.fetch("SELECT key, value FROM ocsi_acme")
        keys = set()
        for row in rows:
            keys.add(row["key"])
            self._write(row["key"], bytes(row["value"]))
        for kind in ("http-01", "tls-alpn-01"):
            directory = os.path.join(self.store.root, "challenges", kind)
            for name in os.listdir(directory) if os.path.isdir(directory) else []:
                if f"challenges/{kind}/{name}" not in keys and not name.startswith(".tmp-"):
                    try:
                        os.unlink(os.path.join(directory, name))
                    except FileNotFoundError:
                        pass

    def _write(self, key: str, data: bytes) -> None:
        path = os.path.join(self.store.root, *key.split("/"))
        if ".." in key.split("/") or key in _LOCAL_ONLY:
            return
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    return
        except OSError:
            pass
        write_atomically(path, data, 0o644 if key.endswith("state.json") else 0o600)

    # -- from the ordering thread -------------------------------------------------------------
    def _call(self, coro: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def put(self, key: str, data: bytes) -> None:
        self._call(self._put(key, data))

    def delete(self, key: str) -> None:
        self._call(self._delete(key))

    async def _put(self, key: str, data: bytes) -> None:
        async with self._io:
            await self._conn.execute(
                "INSERT INTO ocsi_acme (key, value, updated) VALUES ($1, $2, now()) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated = now()", key, data)
            await self._conn.execute(f"NOTIFY {CHANNEL}")

    async def _delete(self, key: str) -> None:
        async with self._io:
            await self._conn.execute("DELETE FROM ocsi_acme WHERE key = $1", key)
            await self._conn.execute(f"NOTIFY {CHANNEL}")

    # -- one order per name set in the cluster -----------------------------------------------
    async def try_lock(self, names: Sequence[str]) -> bool:
        return bool(await self._lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_id(names)))

    async def unlock(self, names: Sequence[str]) -> None:
        await self._lock_conn.fetchval("SELECT pg_advisory_unlock($1)", _lock_id(names))
