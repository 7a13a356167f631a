"""What every process does with ACME certificates: serve them, answer challenges.

:class:`AcmeServing` is consulted by the SNI callback (:class:`ocsi.sni.CertificateChooser`)
for the names of ``<host acme="true">``: the CA's tls-alpn-01 handshakes get the validation
certificate, other clients the host's certificate; while a host has none yet its handshakes
are refused with an alert (and a warning, at most once a minute per host, says why). The
stored certificates are checked again every few seconds, so a certificate obtained or renewed
by another process is used by new connections there too.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._config.settings import SSLSettings
from .._http.request import Request
from .._http.response import Response
from .._pipeline.https import HTTPS_PENDING
from ..stats import CountedSSLObject
from ..tls import acme_context
from .challenges import PREFIX, AlpnChallenges, ChallengeFiles
from .config import AcmeHost
from .store import AcmeStore

log = logging.getLogger("ocsi.acme")

#: How often another process's new certificate is looked for.
REFRESH_INTERVAL = 2.0
#: A refused handshake is explained at most this often per host.
WARN_INTERVAL = 60.0


class RefusableSSLObject(CountedSSLObject):
    """The listeners' TLS objects while ACME is configured: a handshake refused by
    :meth:`AcmeServing.choose` fails only once its alert has been sent.

    asyncio closes the connection as soon as a handshake fails, dropping the alert OpenSSL
    has just written; here that failure is first reported as "want read", so the event loop
    sends what is pending (the alert) and waits; the client, alerted, closes, or the next
    attempt raises the failure itself."""

    refused = False
    _failure: ssl.SSLError | None = None

    def do_handshake(self) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            if not self.refused:
                raise
            self._failure = exc
            raise ssl.SSLWantReadError("the refusal's alert goes out first") from exc


class AcmeServing:
    def __init__(self, store: AcmeStore, hosts: Sequence[AcmeHost], options: SSLSettings | None,
                 alpn: bool) -> None:
        self.store = store
        self.hosts = list(hosts)
        self.options = options
        self.files = ChallengeFiles(store.root)
        self.alpn = AlpnChallenges(self.files) if alpn else None
        self._by_name = {name: host for host in self.hosts for name in host.names}
        #: names[0] -> (mtime of the stored file, its context)
        self._contexts: dict[str, tuple[float, ssl.SSLContext]] = {}
        self._warned: dict[str, float] = {}

    def watch(self, ctx: ssl.SSLContext) -> None:
        """Hook into the listeners' context: refusals that reach the client, and the ALPN
        list of each ClientHello for tls-alpn-01."""
        ctx.sslobject_class = RefusableSSLObject
        if self.alpn is None:
            self.unwatch(ctx)  # a reload may have dropped tls-alpn-01
        elif not self.alpn.watch(ctx):
            log.warning("this Python does not show the TLS ClientHello: tls-alpn-01 cannot be "
                        "answered, http-01 is used")
            self.alpn = None

    @staticmethod
    def unwatch(ctx: ssl.SSLContext) -> None:
        """No more ClientHello reading in ``ctx`` (ACME gone, or tls-alpn-01, after a reload)."""
        if getattr(ctx, "_msg_callback", None) is not None:
            setattr(ctx, "_msg_callback", None)  # noqa: B010 - CPython's, not in the stubs

    def refresh(self) -> list[AcmeHost]:
        """Load the stored certificates that changed; the hosts whose certificate is new."""
        changed = []
        for host in self.hosts:
            current = self._contexts.get(host.names[0])
            try:  # a stat per host and round; the file is read only when it changed
                if current is not None and current[0] == os.stat(
                        self.store.certificate_path(host.names)).st_mtime:
                    continue
            except OSError:
                continue
            stored = self.store.certificate(host.names)
            if stored is None:
                continue
            try:
                ctx = acme_context(stored.path, self.options)
            except (OSError, ssl.SSLError) as exc:
                log.error("%s: the stored certificate %s cannot be used: %s", host.where,
                          stored.path, exc)
                continue
            self._contexts[host.names[0]] = (stored.mtime, ctx)
            changed.append(host)
        return changed

    def certificate_file(self, name: str) -> str | None:
        """For HTTP/3 (:mod:`ocsi._http.quicendpoint`), which reads certificates from files:
        the stored key-and-chain file serving ``name``; ``""`` for an ACME name whose
        certificate is not obtained yet; ``None`` for a name that is not an ACME host's."""
        host = self._by_name.get(name.lower())
        if host is None:
            return None
        if host.names[0] not in self._contexts:
            return ""
        return self.store.certificate_path(host.names)

    def ready(self, host: AcmeHost) -> bool:
        return host.names[0] in self._contexts

    def serves(self, name: str) -> bool:
        """Whether HTTPS for ``name`` works: not an ACME name, or one with its certificate."""
        host = self._by_name.get(name.lower())
        return host is None or host.names[0] in self._contexts

    def choose(self, conn: Any, name: str | None) -> ssl.SSLContext | int | None:
        """The context for a handshake naming ``name``, an alert to refuse it, or ``None``
        when the name is not an ACME host's."""
        if not name:
            return None
        host = self._by_name.get(name.lower())
        if host is None:
            return None
        if self.alpn is not None and self.alpn.is_validation(conn):
            validation = self.alpn.context(name.lower())
            if validation is not None:
                return validation
            return self._refuse(conn)
        current = self._contexts.get(host.names[0])
        if current is not None:
            return current[1]
        now = time.monotonic()
        if now - self._warned.get(host.names[0], -WARN_INTERVAL) >= WARN_INTERVAL:
            self._warned[host.names[0]] = now
            log.warning("%s: HTTPS handshake for %s refused: its certificate has not been "
                        "obtained from the ACME CA yet (plain HTTP is served)", host.where, name)
        return self._refuse(conn)

    @staticmethod
    def _refuse(conn: Any) -> int:
        if isinstance(conn, RefusableSSLObject):
            conn.refused = True
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME

    def wrap(self, app: Callable[[Request], Awaitable[Response]]
             ) -> Callable[[Request], Awaitable[Response]]:
        """``app`` with http-01 answered first, on plain HTTP, before any host's steps; a
        plain request for a host still without its certificate is not redirected to HTTPS."""
        files = self.files

        async def respond(request: Request) -> Response:
            if not request.secure:
                path = request.raw_path
                if path.startswith(PREFIX) and request.method in ("GET", "HEAD"):
                    answer = files.http(path[len(PREFIX):])
                    if answer is not None:
                        return Response(200, [("content-type", "application/octet-stream")], answer)
                if request.host and not self.serves(request.host):
                    request.stash[HTTPS_PENDING] = True  # redirect-to-https waits
            return await app(request)

        respond.__wrapped__ = app  # type: ignore[attr-defined]  # functools' convention, unknown to Callable
        return respond
