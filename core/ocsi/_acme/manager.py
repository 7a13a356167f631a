"""When to order and renew, in the one process of the server that orders.

Each ``<host acme="true">`` has a task: no certificate (or one about to expire) means an order
now; otherwise it sleeps until the renewal time of :mod:`.renewal`: a time drawn in the CA's
suggested window when its directory offers ARI (RFC 9773, asked again when its ``Retry-After``
says; the new order names the certificate it replaces), else when a third of the certificate's
lifetime is left, minus a random jitter (up to a thirtieth of the lifetime) so that a fleet
does not renew at the same second.
A failed order is logged and retried after ``<acme retry>`` seconds, doubled at each failure
up to a day, and never sooner than the CA's ``Retry-After``. A task orders for its own names
only, so there is one order per name set at a time; orders run one after the other in one
daemon thread (the ``acme`` library is synchronous), never on the event loop. Fourteen days
before expiry (a sixth of the lifetime for short-lived certificates), a certificate that could
not be renewed is a warning every day.

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
from typing import TYPE_CHECKING, Any

from ..logs import NOTICE
from .config import AcmeHost, AcmeSettings
from .renewal import DEFAULT_POLL, RenewalInfo, poll_delay
from .serving import REFRESH_INTERVAL, AcmeServing
from .shared import SharedStorage
from .store import AcmeStore, CertState, StoredCertificate

if TYPE_CHECKING:
    import ssl

    from ..sni import CertificateChooser

log = logging.getLogger("ocsi.acme")

MAX_BACKOFF = 86400.0
EXPIRY_WARNING = datetime.timedelta(days=14)


def expiry_warning(cert: StoredCertificate) -> datetime.timedelta:
    """How long before expiry a certificate not renewed yet is a warning a day: fourteen days,
    or a sixth of the lifetime for short-lived certificates (a six-day certificate would
    otherwise be a warning from its issuance, before its renewal is even due)."""
    return min(EXPIRY_WARNING, cert.lifetime / 6)


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
        #: The cluster's PostgreSQL (:mod:`.shared`) when the configuration has one
        #: (``settings.cluster_database``, which ocsipersist-pgsql publishes).
        self.share: SharedStorage | None = SharedStorage(database, store) if database else None
        self.hosts = hosts
        self.store = store
        self.serving = serving
        self.orders = orders
        self._stop = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._thread: _OrderThread | None = None
        #: The thread was handed to the manager of a reloaded configuration (not closed here).
        self._handed_over = False
        self._client: Any = None
        #: What the CA said of each name set's certificate (ARI), kept by this process only.
        self._renewal_info: dict[tuple[str, ...], RenewalInfo] = {}

    def take_over(self, previous: AcmeManager) -> None:
        """Run this manager's orders in ``previous``'s thread (a reload changed the settings):
        an order of the old settings still in flight ends before one of the new starts, so
        two orders of this process never publish challenges for the same name at once."""
        if previous._thread is not None and self.orders:
            self._thread, previous._handed_over = previous._thread, True

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
                if self.orders and (shared := await self.share.push_held()):
                    log.info("ACME: %d certificate(s) of this server shared with the cluster",
                             shared)
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
            if self._thread is None:
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
        if self._thread is not None and not self._handed_over:
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
            asked = stored is not None and await self._ask_renewal_info(host, stored, state)
            if asked:
                _, _, due = self._due(names, jitter)  # ``state`` keeps what was learnt
            now = datetime.datetime.now(datetime.timezone.utc)
            if stored is not None and stored.not_after - now < expiry_warning(stored) \
                    and time.time() - warned > 86400:
                warned = time.time()
                log.warning("%s: the certificate of %s %s on %s and is not renewed yet%s",
                            host.where, " ".join(names),
                            "expired" if stored.not_after <= now else "expires",
                            f"{stored.not_after:%Y-%m-%d %H:%M:%S} UTC",
                            f" (last error: {state.last_error})" if state.last_error else "")
            if asked or state.extra.get("next_attempt") != due.timestamp():
                state.extra["next_attempt"] = due.timestamp()  # for ocsi cert status
                self.store.save_state(state)
            wait = (due - now).total_seconds()
            if wait > 0:
                info = self._renewal_info.get(names)
                if info is not None and stored is not None and info.cert_id == stored.cert_id:
                    wait = min(wait, info.next_check - time.time())  # ask the CA again then
                await asyncio.sleep(max(0.0, min(wait, 3600.0)))
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
            info = self._renewal_info.get(names)
            if info is not None and info.renew_at is not None and info.cert_id == stored.cert_id:
                due = info.renew_at  # the CA's window (ARI) rather than a third of the lifetime
        if state.not_before is not None:
            due = max(due, datetime.datetime.fromtimestamp(state.not_before, datetime.timezone.utc))
        return stored, state, due

    async def _ask_renewal_info(self, host: AcmeHost, stored: StoredCertificate,
                                state: CertState) -> bool:
        """Ask the CA for ``stored``'s renewal window when it is time to (ARI); whether it was
        asked (``state.extra`` then says what came of it, for ``ocsi cert status``). A failure
        keeps the window known so far (or a third of the lifetime) and asks again later."""
        from .client import OrderFailed

        names = host.names
        known = self._renewal_info.get(names)
        if stored.cert_id is None or stored.cert is None or stored.not_after <= \
                datetime.datetime.now(datetime.timezone.utc):
            return False  # no identifier; or expired: never asked about (RFC 9773, 4.3)
        if known is not None and known.cert_id == stored.cert_id and time.time() < known.next_check:
            return False
        cert = stored.cert
        try:
            info: RenewalInfo = await self._thread_run(lambda: self._acme().renewal_info(cert))
        except Exception as exc:  # noqa: BLE001 - the window waits; the renewal never does
            retry_after = exc.retry_after if isinstance(exc, OrderFailed) else None
            delay = poll_delay(retry_after) if retry_after is not None else DEFAULT_POLL
            log.warning("%s: %s (asked again in %.0f s)", host.where, exc, delay)
            if known is not None and known.cert_id == stored.cert_id:
                info = RenewalInfo(known.cert_id, known.start, known.end, known.renew_at,
                                   time.time() + delay, known.offered, known.explanation)
            else:  # a third of the lifetime meanwhile; no ``replaces`` for a CA not heard from
                info = RenewalInfo(stored.cert_id, None, None, None, time.time() + delay, False)
            self._renewal_info[names] = info
            if info.start is None:
                state.extra.pop("renewal_window", None)
            state.extra["renewal_info"] = f"unavailable: {exc}"
            state.extra["renewal_info_next_check"] = info.next_check
            return True
        self._renewal_info[names] = info
        if info.start is not None and info.end is not None and info.renew_at is not None:
            moved = known is None or (known.start, known.end) != (info.start, info.end)
            if moved:
                log.log(NOTICE if info.explanation else logging.INFO,
                        "%s: the CA suggests renewing %s between %s and %s: renewal at %s%s",
                        host.where, " ".join(names), f"{info.start:%Y-%m-%d %H:%M:%S}",
                        f"{info.end:%Y-%m-%d %H:%M:%S} UTC", f"{info.renew_at:%Y-%m-%d %H:%M:%S}",
                        f" ({info.explanation})" if info.explanation else "")
            state.extra["renewal_window"] = [info.start.timestamp(), info.end.timestamp()]
        else:
            state.extra.pop("renewal_window", None)
        state.extra["renewal_info"] = "offered" if info.offered else "not offered"
        state.extra["renewal_info_next_check"] = info.next_check  # saved by the caller
        return True

    def _replaces(self, names: tuple[str, ...]) -> str | None:
        """The identifier of the certificate a new order renews, when the CA speaks ARI."""
        stored = self.store.certificate(names)
        info = self._renewal_info.get(names)
        if stored is None or info is None or not info.offered or info.cert_id != stored.cert_id:
            return None
        return stored.cert_id

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
        replaces = self._replaces(names)
        try:
            key_pem, chain_pem = await self._thread_run(
                lambda: self._acme().obtain(names, replaces))
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


async def switch(previous: AcmeManager | None, current: AcmeManager | None,
                 tls: ssl.SSLContext | None, chooser: CertificateChooser | None
                 ) -> AcmeManager | None:
    """A reload changed ``<acme>`` or the ``acme="true"`` hosts: ``current`` (the new
    settings' manager, or ``None``) takes over from ``previous``; what is now in use.

    The new manager loads the stored certificates before the handshakes see it, so hosts that
    keep ``acme="true"`` are served throughout; its orders run in the previous one's thread
    (:meth:`AcmeManager.take_over`); the listeners' context reads ClientHellos for tls-alpn-01
    only while it is asked for. A server started without an HTTPS port has no TLS context to
    serve from: ACME waits for a restart there, as ``<port>`` does."""
    if current is not None and (tls is None or chooser is None):
        log.warning("%s: <acme> takes effect at the next restart: the server was started "
                    "without an HTTPS <port>", current.settings.where)
        current = None
    if current is not None and tls is not None and chooser is not None:
        if previous is not None:
            current.take_over(previous)
        current.start()
        current.serving.watch(tls)
        chooser.acme = current.serving
    else:
        if chooser is not None:
            chooser.acme = None
        if tls is not None:
            AcmeServing.unwatch(tls)
    log.log(NOTICE, "ACME: %s", "the new <acme> settings and hosts are in use" if current
            else "no automatic certificate any more")
    if previous is not None:
        await previous.stop()
    return current
