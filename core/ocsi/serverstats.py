"""What a running server adds to the process's counters (:mod:`ocsi.stats`) at each snapshot:
its connections, the requests in flight, its certificates' expiry dates; and, in a worker,
the counters it publishes for the other workers' scrapes (:func:`publish_counters`).

These are looked at when a scrape asks, never counted per request: the connection manager
already knows its connections, and a certificate's date is read from its file (remembered
until the file changes).

Private: not part of the extension API. (``ocsi`` exports what extensions use.)
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from .stats import STATS
from .statsfiles import ENV as STATS_ENV
from .statsfiles import publish

if TYPE_CHECKING:
    from .server import Server

__all__ = ["ServerSampler", "publish_counters"]

log = logging.getLogger("ocsi.main")

OPEN = STATS.gauge("ocsi_connections_open", "Client connections open")
IDLE = STATS.gauge("ocsi_connections_idle", "Client connections open with no request in "
                   "progress")
HTTP2 = STATS.gauge("ocsi_connections_http2", "Client connections speaking HTTP/2")
IN_FLIGHT = STATS.gauge("ocsi_requests_in_flight", "Requests being answered")
EXPIRY = STATS.gauge("ocsi_certificate_expiry_timestamp_seconds",
                     "When a certificate stops being valid (Unix time), by source (file, acme) "
                     "and certificate (the file as configured, the ACME certificate's first "
                     "name)", ("source", "certificate"), merge="min")

Sample = dict[str, dict[tuple[str, ...], float]]


class ServerSampler:
    """``STATS.add_sampler(ServerSampler(server))`` while the server runs."""

    def __init__(self, server: Server) -> None:
        self.server = server
        #: path -> (mtime, expiry timestamp)
        self._dates: dict[str, tuple[float, float]] = {}

    def __call__(self) -> Sample:
        out: Sample = {}
        m = self.server.manager
        if m is not None:
            conns = m.connections
            h2 = [c for c in conns if hasattr(c, "_streams")]
            h2_busy = sum(1 for c in h2 if c._streams)
            h2_streams = sum(len(c._streams) for c in h2)
            # an HTTP/1.1 connection carries one request at a time
            h1_busy = max(0, m.in_flight - h2_streams)
            out[OPEN.name] = {(): len(conns)}
            out[HTTP2.name] = {(): len(h2)}
            out[IDLE.name] = {(): max(0, len(conns) - h2_busy - h1_busy)}
            out[IN_FLIGHT.name] = {(): m.in_flight}
        out[EXPIRY.name] = self._certificates()
        return out

    def _certificates(self) -> dict[tuple[str, ...], float]:
        dates: dict[tuple[str, ...], float] = {}
        runtime = self.server.runtime
        if runtime is None:
            return dates
        s = runtime.settings
        files = [h.certificate for h in s.host_certificates]
        if s.ssl is not None and s.ssl.certificate:
            files.insert(0, s.ssl.certificate)
        for path in files:
            when = self._expiry(path)
            if when is not None:
                dates[("file", path)] = when
        acme = self.server.acme
        if acme is not None:
            for host in acme.serving.hosts:
                when = self._expiry(acme.serving.store.certificate_path(host.names))
                if when is not None:
                    dates[("acme", host.names[0])] = when
        return dates

    def _expiry(self, path: str) -> float | None:
        from cryptography import x509

        try:
            mtime = os.stat(path).st_mtime
            known = self._dates.get(path)
            if known is not None and known[0] == mtime:
                return known[1]
            with open(path, "rb") as f:
                cert = x509.load_pem_x509_certificates(f.read())[0]
        except (OSError, ValueError, IndexError):
            return None
        when = cert.not_valid_after_utc.timestamp()
        self._dates[path] = (mtime, when)
        return when


def publish_counters(worker: int | None) -> None:
    """A worker's counters, written for the other workers' scrapes once a second and at
    the end (:mod:`ocsi.statsfiles`), while the configuration exports them."""
    directory = os.environ.get(STATS_ENV)
    if worker is None or not STATS.exported or not directory:
        return
    try:
        publish(directory, worker, STATS.snapshot())
    except Exception:  # noqa: BLE001 - the next second tries again
        log.exception("publishing this worker's counters failed")
