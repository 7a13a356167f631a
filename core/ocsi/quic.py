"""HTTP/3 on the HTTPS ports that say ``http3="true"``: the parts that do not need ``aioquic``.

``aioquic`` (QUIC, TLS 1.3 for QUIC, HTTP/3 framing and QPACK) is an optional dependency, the
``ocsi[http3]`` extra: this module only tells whether it is there (a ``<port http3="true">``
without it is a located configuration error), binds the UDP sockets beside the TCP ones, adds
``Alt-Svc`` to the answers given over TCP, and starts the endpoints
(:mod:`ocsi._http.quicendpoint`), importing ``aioquic`` only then.

Workers: HTTP/3 is served by one process. The master binds the UDP socket with the TCP ones;
worker 0 alone serves it, the others close their copy. QUIC packets of one connection carry
connection IDs, not a 4-tuple the kernel could hash: a client that changes address (NAT
rebinding, a phone moving to another network) must still reach the process that holds the
connection's keys, which ``SO_REUSEPORT``'s hash does not promise, and the alternatives (a
BPF program steering by connection ID, or forwarding packets between workers) cost kernel
privileges or a copy per packet. One process serves every HTTP/3 connection; TCP (HTTP/1.1 and
HTTP/2) stays spread over every worker. When worker 0 is restarted, the new worker 0 serves the
same socket (the master keeps it open) and clients open new connections.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._config.settings import PortSpec, ServerSettings

if TYPE_CHECKING:
    from ._http.request import Request
    from ._http.response import Response

__all__ = ["ALT_SVC_MAX_AGE", "alt_svc", "bind_udp", "missing_library", "serve_quic",
           "with_alt_svc"]

log = logging.getLogger("ocsi.main")

#: ``ma`` of the ``Alt-Svc`` header: how long a client may remember that HTTP/3 is offered.
ALT_SVC_MAX_AGE = 86400


def missing_library() -> str | None:
    """``None`` when HTTP/3 can be served, else what is missing (for the located error)."""
    for module in ("aioquic", "pylsqpack"):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"the Python library {module}, which is not installed"
    return None


def bind_udp(spec: PortSpec, tcp: list[socket.socket],
             passed: list[socket.socket] | None = None) -> list[socket.socket]:
    """One UDP socket beside each TCP socket of ``spec``, at the same address and port (the
    port the kernel chose, for port 0): one of ``passed`` (by systemd, or by the process this
    one upgrades) bound there is taken out of it and used, else a new one is bound.
    ``OSError`` when one cannot be bound."""
    socks: list[socket.socket] = []
    for t in tcp:
        if t.type != socket.SOCK_STREAM:
            continue
        where = t.getsockname()[:2]
        given = [p for p in passed or () if p.type == socket.SOCK_DGRAM
                 and p.family == t.family and p.getsockname()[:2] == where]
        if given:
            assert passed is not None
            passed.remove(given[0])
            given[0].setblocking(False)
            socks.append(given[0])
            continue
        sock = socket.socket(t.family, socket.SOCK_DGRAM)
        try:
            if t.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(where)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if t.family == socket.AF_INET6 and exc.errno in (errno.EADDRNOTAVAIL,
                                                             errno.EAFNOSUPPORT):
                continue
            for s in socks:
                s.close()
            raise
        socks.append(sock)
    return socks


def alt_svc(port: int) -> str:
    """The ``Alt-Svc`` value that offers HTTP/3 on ``port``."""
    return f'h3=":{port}"; ma={ALT_SVC_MAX_AGE}'


App = Callable[["Request"], Awaitable["Response"]]


def with_alt_svc(app: App, ports: dict[int, str]) -> App:
    """``app`` whose answers over HTTP/1.1 and HTTP/2 on one of ``ports`` (listening port to
    ``Alt-Svc`` value) say that HTTP/3 is offered there, unless a step set ``Alt-Svc``
    itself. Answers made by the connection layer (a 400 for a head it could not read) do not
    carry it: a browser learns it from its next good answer."""
    if not ports:
        return app

    async def respond(request: Request) -> Response:
        response = await app(request)
        value = ports.get(request.port)
        if value is not None and request.version != "3" and "alt-svc" not in response.headers:
            response.headers.add("alt-svc", value)
        return response

    return respond


async def serve_quic(manager: Any, sockets: list[tuple[PortSpec, socket.socket]],
                     settings: Callable[[], ServerSettings], serve: bool,
                     acme: Callable[[], Any] = lambda: None) -> list[Any]:
    """Start an endpoint (:class:`ocsi._http.quicendpoint.QuicEndpoint`) on each UDP socket;
    with ``serve`` false (a worker other than 0) close this process's copies instead. The
    certificates are read now, so a key that cannot be used stops the start."""
    if not serve:
        for _, sock in sockets:
            sock.close()
        return []
    from ._http.quicendpoint import QuicCertificates, QuicEndpoint
    from .listeners import StartupError

    certificates = QuicCertificates(settings, acme)
    try:
        certificates.default()
    except (OSError, ValueError, TypeError) as exc:
        for _, sock in sockets:
            sock.close()
        raise StartupError(f"HTTP/3 ({sockets[0][0].where}): the certificate cannot be used: "
                           f"{exc}") from None
    loop = asyncio.get_running_loop()
    endpoints: list[Any] = []
    for spec, sock in sockets:
        port = sock.getsockname()[1]
        _, endpoint = await loop.create_datagram_endpoint(
            lambda port=port: QuicEndpoint(manager, port, certificates),  # type: ignore[misc]
            sock=sock)
        endpoints.append(endpoint)
        log.info("HTTP/3 on UDP port %d (%s)", port, spec.where)
    return endpoints
