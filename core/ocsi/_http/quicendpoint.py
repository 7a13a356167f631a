"""The UDP side of an ``http3="true"`` port: one :class:`QuicEndpoint` per UDP socket routes
datagrams to their QUIC connection (:class:`~.h3conn.H3Protocol`) by connection ID, and
admits new connections.

A new connection is admitted only from an Initial packet of at least 1,200 bytes (RFC 9000
§14.1) that carries a valid Retry token: the first Initial from an address is answered with a
Retry (stateless: the token is the client's address and connection IDs, encrypted), so that
no state is kept and nothing larger than what was received is sent to an address that has not
proven it receives (amplification, RFC 9000 §8). Past ``<maxconnected>`` connections (TCP and
QUIC together) or while shutting down, Initial packets are dropped. Anything that does not
parse as a QUIC packet, or belongs to no connection, is dropped and counted, and the count is
logged at most once every ``DROP_REPORT`` seconds, so a flood costs one parse per datagram and
no log line each.

0-RTT is off: no session ticket is ever issued, so there is no resumption and no early data
(which a network attacker may replay, RFC 9001 §9.2). Certificates are those of TCP: an ACME
host's, the ``<host certificate>`` that claims the name the client sent (SNI), else ``<ssl>``'s,
read again when their files change (renewal, reload, ``ssl:reload``).

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aioquic._buffer import Buffer
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.packet import (QuicPacketType, QuicProtocolVersion, encode_quic_retry,
                                 encode_quic_version_negotiation, pull_quic_header)
from aioquic.quic.retry import QuicRetryTokenHandler
from aioquic.tls import AlertHandshakeFailure
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..certificates import self_signed

from .h3conn import CLOSE_LINGER, H3Protocol
from .quicconn import STREAM_WINDOW, CertificateChain, FlowControlled

if TYPE_CHECKING:
    from .._acme.serving import AcmeServing
    from .._config.settings import ServerSettings
    from .shared import Shared

__all__ = ["QuicCertificates", "QuicEndpoint"]

log = logging.getLogger("ocsi.http")

#: Seconds between two log lines about dropped datagrams.
DROP_REPORT = 60.0


class QuicCertificates:
    """Certificates for QUIC's TLS, chosen by SNI as :class:`ocsi.sni.CertificateChooser`
    chooses TCP's: an ACME host's (``acme()``, :mod:`ocsi.acme`), else the ``<host
    certificate>`` that claims the name, else ``<ssl>``'s; from the running configuration
    (``settings()``, so a reload is seen), files read again when they change."""

    def __init__(self, settings: Callable[[], ServerSettings],
                 acme: Callable[[], AcmeServing | None] = lambda: None) -> None:
        self._settings = settings
        self._acme = acme
        self._cache: dict[tuple[str, str], tuple[tuple[float, ...], CertificateChain]] = {}
        self._placeholder: CertificateChain | None = None

    def _load(self, certificate: str, privatekey: str | None = None) -> CertificateChain:
        """The chain of ``certificate`` and the key of ``privatekey`` (or of the same file,
        as ACME stores them)."""
        keyfile = privatekey or certificate
        mtimes = (os.stat(certificate).st_mtime, os.stat(keyfile).st_mtime)
        cached = self._cache.get((certificate, keyfile))
        if cached is not None and cached[0] == mtimes:
            return cached[1]
        with open(certificate, "rb") as f:
            certs = x509.load_pem_x509_certificates(f.read())
        with open(keyfile, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        chain: CertificateChain = (certs[0], certs[1:], key)
        self._cache[(certificate, keyfile)] = (mtimes, chain)
        return chain

    def default(self) -> CertificateChain | None:
        """``<ssl>``'s pair, else the first ``<host certificate>``'s; ``None`` when every
        certificate comes from ACME."""
        s = self._settings()
        if s.ssl is not None and s.ssl.certificate and s.ssl.privatekey:
            return self._load(s.ssl.certificate, s.ssl.privatekey)
        if s.host_certificates:
            h = s.host_certificates[0]
            return self._load(h.certificate, h.privatekey)
        return None

    def placeholder(self) -> CertificateChain:
        """What a new connection is created with (aioquic wants one) when there is no default:
        never presented, the handshake chooses or refuses (:meth:`choose`)."""
        if self._placeholder is None:
            cert, key = self_signed(["invalid"])
            self._placeholder = (x509.load_pem_x509_certificate(cert), [],
                                 serialization.load_pem_private_key(key, password=None))
        return self._placeholder

    def choose(self, name: str | None) -> CertificateChain:
        """The pair for a handshake naming ``name``. An ACME name without its certificate yet,
        or a name nothing covers when there is no default, is refused (a TLS alert). A host's
        file that cannot be read now is logged, and the default serves."""
        if name:
            name = name.lower()
            acme = self._acme()
            path = acme.certificate_file(name) if acme is not None else None
            if path == "":
                raise AlertHandshakeFailure(f"no certificate for {name} yet")
            if path:
                return self._load(path)
            for host in self._settings().host_certificates:
                if host.claims(name):
                    try:
                        return self._load(host.certificate, host.privatekey)
                    except (OSError, ValueError) as exc:
                        log.error("%s: the certificate for %s cannot be read for HTTP/3: %s",
                                  host.where, name, exc)
                    break
        chain = self.default()
        if chain is None:
            raise AlertHandshakeFailure(f"no certificate for {name or 'a client without SNI'}")
        return chain


class QuicEndpoint(asyncio.DatagramProtocol):
    """One UDP socket of an ``http3="true"`` port."""

    def __init__(self, manager: Shared, port: int, certificates: QuicCertificates) -> None:
        self.manager = manager
        self.port = port
        self._certificates = certificates
        self._retry = QuicRetryTokenHandler()
        self._cids: dict[bytes, H3Protocol] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._supported: list[int] = [QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2]
        self.dropped = 0
        self._reported = 0
        self._report_at = 0.0

    def configuration(self) -> QuicConfiguration:
        """The QUIC settings of a new connection (the limits in force now)."""
        limits = self.manager.limits
        # QUIC's idle timeout is for a client that went silent; the one with no stream open
        # (<keepalivetimeout>) is H3Protocol's, which closes politely first
        c = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                              idle_timeout=limits.keepalive_timeout + CLOSE_LINGER,
                              max_stream_data=STREAM_WINDOW, max_data=4 * 1024 * 1024)
        chain = self._certificates.default() or self._certificates.placeholder()
        c.certificate, c.certificate_chain, c.private_key = chain
        return c

    # -- routing ---------------------------------------------------------------------------------
    def route(self, cid: bytes, conn: H3Protocol) -> None:
        self._cids[cid] = conn

    def unroute(self, cid: bytes) -> None:
        self._cids.pop(cid, None)

    def forget(self, conn: H3Protocol) -> None:
        for cid in [c for c, p in self._cids.items() if p is conn]:
            del self._cids[cid]

    def sendto(self, data: bytes, addr: Any) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def close(self) -> None:
        """Stop reading the socket, after the manager has let the connections finish (on
        shutdown), or at once when a successor takes the socket (``upgrade``): connections
        left are closed, and their clients open new ones."""
        for conn in set(self._cids.values()):
            conn.abort()
        if self._transport is not None:
            self._transport.close()

    # -- asyncio ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error on the HTTP/3 port %d: %s", self.port, exc)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=8)
        except ValueError:
            self._drop()
            return
        conn = self._cids.get(header.destination_cid)
        if conn is not None:
            try:
                conn.datagram_received(data, addr)
            except Exception:  # noqa: BLE001 - one connection fails, the port goes on
                log.exception("HTTP/3 connection from %s failed", addr[0])
                conn.abort()
            return
        if len(data) < SMALLEST_MAX_DATAGRAM_SIZE:
            self._drop()
            return
        if header.version and header.version not in self._supported \
                and header.packet_type != QuicPacketType.VERSION_NEGOTIATION:
            self.sendto(encode_quic_version_negotiation(
                source_cid=header.destination_cid, destination_cid=header.source_cid,
                supported_versions=self._supported), addr)
            return
        if header.packet_type != QuicPacketType.INITIAL or header.version is None:
            self._drop()
            return
        if self.manager.closing or not self.manager.has_room():
            self._drop()
            return
        now = self._loop.time()
        if not header.token:
            source_cid = os.urandom(8)
            self.sendto(encode_quic_retry(
                version=header.version, source_cid=source_cid,
                destination_cid=header.source_cid,
                original_destination_cid=header.destination_cid,
                retry_token=self._retry.create_token(
                    address=addr, original_destination_connection_id=header.destination_cid,
                    retry_source_connection_id=source_cid, now=now)), addr)
            return
        try:
            original = self._retry.validate_token(address=addr,
                                                  destination_cid=header.destination_cid,
                                                  token=header.token, now=now)
        except ValueError:
            self._drop()
            return
        try:
            quic = FlowControlled(choose=self._certificates.choose,
                                  configuration=self.configuration(),
                                  original_destination_connection_id=original,
                                  retry_source_connection_id=header.destination_cid)
        except (OSError, ValueError) as exc:
            log.error("HTTP/3 connection from %s refused: %s", addr[0], exc)
            return
        conn = H3Protocol(self, quic, addr)
        self._cids[header.destination_cid] = conn
        self._cids[quic.host_cid] = conn
        try:
            conn.datagram_received(data, addr)
        except Exception:  # noqa: BLE001
            log.exception("HTTP/3 connection from %s failed", addr[0])
            conn.abort()

    def _drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now >= self._report_at:
            if self.dropped > self._reported:
                log.info("HTTP/3 port %d: %d datagram(s) dropped (not QUIC, or for no "
                         "connection)", self.port, self.dropped - self._reported)
                self._reported = self.dropped
            self._report_at = now + DROP_REPORT
