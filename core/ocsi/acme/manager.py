"""When to order and renew, in the one process of the server that orders.

Each ``<host acme="true">`` has a task: no certificate (or one about to expire) means an order
now; otherwise it sleeps until a third of the certificate's lifetime is left, minus a random
jitter (up to a thirtieth of the lifetime) so that a fleet does not renew at the same second.
A failed order is logged and retried after ``<acme retry>`` seconds, doubled at each failure
up to a day, and never sooner than the CA's ``Retry-After``. A task orders for its own names
only, so there is one order per name set at a time; orders run one after the other in one
daemon thread (the ``acme`` library is synchronous), never on the event loop. Fourteen days
before expiry, a certificate that could not be renewed is a warning every day.

Every other process (the workers that do not order) only looks for new files
(:meth:`AcmeServing.refresh`).

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..logs import NOTICE
from .config import AcmeHost, AcmeSettings
from .serving import REFRESH_INTERVAL, AcmeServing
from .shared import SharedStorage
from .store import AcmeStore, CertState, StoredCertificate

log = logging.getLogger("ocsi.acme")

MAX_BACKOFF = 86400.0
EXPIRY_WARNING = datetime.timedelta(days=14)


def renewal_time(cert: StoredCertificate, jitter: float) -> datetime.datetime:
    """When a third of the lifetime is left, ``jitter`` (0..1) of a thirtieth earlier."""
    return cert.not_after - cert.lifetime / 3 - cert.lifetime / 30 * jitter


class _OrderThread:
    """One daemon thread running the synchronous orders, one at a time; a stopping server
    does not wait for an order in flight (the CA forgets it)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ocsi-acme", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                future.set_exception(exc)

    async def run(self, fn: Callable[[], Any]) -> Any:
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._jobs.put(None)


class AcmeManager:
    """The tasks of one server process: refreshing always, ordering when ``orders``."""

    def __init__(self, settings: AcmeSettings, hosts: list[AcmeHost], store: AcmeStore,
                 serving: AcmeServing, orders: bool, database: dict[str, Any] | None = None) -> None:
        self.settings = settings
        #: The cluster's PostgreSQL (:mod:`.shared`) when ocsipersist-pgsql is configured.
        self.share: SharedStorage | None = SharedStorage(database, store) if database else None
        self.hosts = hosts
        self.store = store
        self.serving = serving
        self.orders = orders
        self._stop = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._thread: _OrderThread | None = None
        self._client: Any = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.serving.refresh()
        self._tasks.append(loop.create_task(self._refresh_loop()))
        self._tasks.append(loop.create_task(self._start_ordering()))

    async def _start_ordering(self) -> None:
        loop = asyncio.get_running_loop()
        if self.share is not None:
            try:
                await self.share.open()
                await self.share.account_key()
                await self.share.pull()
                self.serving.files.share = self.share
                self._tasks.append(loop.create_task(self.share.pull_loop()))
                log.info("ACME certificates shared through PostgreSQL")
            except Exception as exc:  # noqa: BLE001 - this server carries on alone
                log.error("ACME: the shared storage in PostgreSQL cannot be used, this server "
                          "keeps its own (%s: %s)", type(exc).__name__, exc)
                await self.share.close()
                self.share = None
        self._refresh()
        if self.orders:
            self._thread = _OrderThread()
            for host in self.hosts:
                self._tasks.append(loop.create_task(self._keep(host)))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._tasks = []
        if self._thread is not None:
            self._thread.close()
        if self.share is not None:
            await self.share.close()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            self._refresh()

    def _refresh(self) -> None:
        changed = self.serving.refresh()
        for host in changed:  # new connections get it; open ones keep theirs
            log.log(NOTICE, "%s: new certificate for %s in use", host.where, " ".join(host.names))

    def _acme(self) -> Any:
        if self._client is None:
            from .client import AcmeClient

            self._client = AcmeClient(self.settings, self.store, self._stop, self.serving.files)
        return self._client

    async def _keep(self, host: AcmeHost) -> None:
        """Order when due, forever (until the server stops)."""
        names = host.names
        jitter = random.random()
        warned: float = 0.0
        while True:
            stored, state, due = self._due(names, jitter)
            now = datetime.datetime.now(datetime.timezone.utc)
            if stored is not None and stored.not_after - now < EXPIRY_WARNING \
                    and time.time() - warned > 86400:
                warned = time.time()
                log.warning("%s: the certificate of %s expires on %s and is not renewed yet%s",
                            host.where, " ".join(names), f"{stored.not_after:%Y-%m-%d %H:%M} UTC",
                            f" (last error: {state.last_error})" if state.last_error else "")
            if state.extra.get("next_attempt") != due.timestamp():
                state.extra["next_attempt"] = due.timestamp()  # for ocsi cert status
                self.store.save_state(state)
            wait = (due - now).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, 3600.0))
                continue
            if self.share is None:
                await self._order(host, state)
                continue
            try:
                locked = await self.share.try_lock(names)
                if locked:
                    try:  # another server may have just stored one, or failed
                        await self.share.pull()
                        _, state, due = self._due(names, jitter)
                        if due <= datetime.datetime.now(datetime.timezone.utc):
                            await self._order(host, state)
                    finally:
                        await self.share.unlock(names)
            except Exception as exc:  # noqa: BLE001 - the database may be back soon
                log.warning("ACME: the shared storage in PostgreSQL failed (%s: %s)",
                            type(exc).__name__, exc)
                await self.share.reopen()
                locked = False
            if not locked:
                log.info("%s: another server orders the certificate of %s", host.where,
                         " ".join(names))
                await asyncio.sleep(5.0)

    def _due(self, names: tuple[str, ...], jitter: float
             ) -> tuple[StoredCertificate | None, CertState, datetime.datetime]:
        """The stored certificate, its state, and when to order: now without a certificate,
        at the renewal time otherwise, never before the backoff's end."""
        stored = self.store.certificate(names)
        state = self.store.state(names)
        due = datetime.datetime.now(datetime.timezone.utc)
        if stored is not None:
            due = renewal_time(stored, jitter)
        if state.not_before is not None:
            due = max(due, datetime.datetime.fromtimestamp(state.not_before, datetime.timezone.utc))
        return stored, state, due

    def _save(self, state: CertState, key_pem: bytes | None = None, chain_pem: bytes | None = None
              ) -> None:
        """The state (and the new certificate) in the files, and in the cluster's storage."""
        names = state.names
        if key_pem is not None and chain_pem is not None:
            self.store.save_certificate(names, key_pem, chain_pem)
        self.store.save_state(state)
        if self.share is not None:
            for path in ([self.store.certificate_path(names)] if key_pem is not None else []) + [
                    os.path.join(self.store.cert_dir(names), "state.json")]:
                with open(path, "rb") as f:
                    self.share.put(os.path.relpath(path, self.store.root).replace(os.sep, "/"),
                                   f.read())

    async def _order(self, host: AcmeHost, state: Any) -> None:
        from .client import OrderFailed

        names = host.names
        started = time.monotonic()
        state.last_attempt = time.time()
        log.info("%s: ordering a certificate for %s from %s", host.where, " ".join(names),
                 self.settings.directory)
        try:
            key_pem, chain_pem = await self._thread_run(lambda: self._acme().obtain(names))
        except Exception as exc:  # noqa: BLE001 - an order's failure never stops the server
            if not isinstance(exc, OrderFailed):
                log.exception("%s: ordering a certificate failed", host.where)
                exc = OrderFailed(f"{type(exc).__name__}: {exc}")
            state.failures += 1
            delay = min(self.settings.retry * 2 ** (state.failures - 1), MAX_BACKOFF)
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            delay *= 1 + random.random() / 10
            state.last_error = str(exc)
            state.not_before = time.time() + delay
            await self._thread_run(lambda: self._save(state))
            log.error("%s: no certificate for %s: %s (next attempt in %.0f s)", host.where,
                      " ".join(names), exc, delay)
            return
        state.failures, state.last_error, state.not_before = 0, None, None
        await self._thread_run(lambda: self._save(state, key_pem, chain_pem))
        log.log(NOTICE, "%s: certificate for %s obtained in %.2f s", host.where, " ".join(names),
                time.monotonic() - started)
        self._refresh()

    async def _thread_run(self, fn: Callable[[], Any]) -> Any:
        assert self._thread is not None
        return await self._thread.run(fn)
