"""Listening sockets: one ``<port>`` becomes one socket per address family, bound before the
server drops privileges and before workers fork (the worker master binds once, every worker
serves the same sockets).

Private: not part of the extension API.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass, field

from .config.settings import PortSpec, ServerSettings
from .logs import NOTICE
from .systemd import listen_fds
from .tls import listener_context, server_context

__all__ = ["Listening", "StartupError", "announce", "open_listeners"]

log = logging.getLogger("ocsi.main")


class StartupError(Exception):
    """The server could not start (bind failure…); ``exit_code`` follows Ocsigen (9: system error)."""

    def __init__(self, message: str, exit_code: int = 9) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _bind(spec: PortSpec) -> list[socket.socket]:
    """Listening sockets for one ``<port>``: a bare port listens on IPv4 and IPv6."""
    if spec.address is None:
        targets = [(socket.AF_INET, "0.0.0.0")]
        if socket.has_ipv6:
            targets.append((socket.AF_INET6, "::"))
    else:
        family = socket.AF_INET6 if ":" in spec.address else socket.AF_INET
        targets = [(family, spec.address)]
    socks: list[socket.socket] = []
    port = spec.port
    for family, addr in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # IPv6 sockets never take IPv4 too, so that `*:80` and `[::]:80` can both be
                # listed (and a bare port opens one socket per family).
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((addr, port))
            except OSError as exc:
                if family == socket.AF_INET6 and spec.address is None and exc.errno in (
                        errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    sock.close()
                    continue
                raise
            sock.listen(1024)
            sock.setblocking(False)
            port = sock.getsockname()[1]  # port 0: the IPv6 socket shares the IPv4 one's port
        except BaseException:
            sock.close()
            for s in socks:
                s.close()
            raise
        socks.append(sock)
    return socks


@dataclass
class Listening:
    """Bound listening sockets, each with its ``<port>``, and the TLS context of the HTTPS ones.

    Built by :func:`open_listeners`; the worker master builds one and hands it to every worker's
    Server, which then serves on those sockets instead of binding its own.
    """

    sockets: list[tuple[PortSpec, socket.socket]]
    tls: ssl.SSLContext | None = None
    #: The UDP sockets of the ``http3="true"`` ports (:mod:`ocsi.quic`).
    quic: list[tuple[PortSpec, socket.socket]] = field(default_factory=list)

    def close(self) -> None:
        for _, sock in self.sockets + self.quic:
            sock.close()

    def announce(self) -> None:
        """One notice per ``<port>``, with a URL to open: what a user waits for at start."""
        announce([(spec, sock.getsockname()[1]) for spec, sock in self.sockets])


def announce(bound: list[tuple[PortSpec, int]]) -> None:
    """Log ``Listening on URL`` once per ``<port>`` (its IPv4 and IPv6 sockets are one line)."""
    seen: set[str] = set()
    for spec, port in bound:
        url = spec.url(port)
        if url not in seen:
            seen.add(url)
            log.log(NOTICE, "Listening on %s", url)


def open_listeners(s: ServerSettings) -> Listening:
    """The TLS context (wrong password: exit 10) and every ``<port>``'s sockets (else exit 9).

    Sockets passed by systemd (socket activation) serve the ``<port>`` whose address they are
    bound to; only the ``<port>`` elements none of them serves are bound here."""
    tls: ssl.SSLContext | None = None
    https = [p for p in s.ports if p.https]
    if https and s.ssl is not None and s.ssl.certificate:
        tls = server_context(s.ssl, ", ".join(str(p.port) for p in https))
    elif https:  # every certificate from ACME (ocsi.acme), chosen per handshake
        tls = listener_context(s.ssl)
    listening = Listening([], tls)
    passed = [sock for sock, _ in listen_fds()]
    for spec in s.ports:
        inherited = [sock for sock in passed if _serves(spec, sock)]
        if inherited:
            for sock in inherited:
                passed.remove(sock)
                sock.setblocking(False)
                log.info("%s (%s) served on the socket passed by systemd, %s", spec.describe(),
                         spec.where, _address(sock))
            listening.sockets += [(spec, sock) for sock in inherited]
            if not spec.http3:
                continue
        try:
            tcp = inherited or _bind(spec)
            if not inherited:
                listening.sockets += [(spec, sock) for sock in tcp]
            if spec.http3:  # UDP beside each TCP socket, passed too or bound here
                from .quic import bind_udp

                listening.quic += [(spec, sock) for sock in bind_udp(spec, tcp, passed)]
        except OSError as exc:
            listening.close()
            for sock in passed:
                sock.close()
            raise StartupError(f"cannot listen on {spec.describe()} ({spec.where}): "
                               f"{exc.strerror or exc}") from None
    for sock in passed:
        log.warning("the socket passed by systemd on %s matches no <port> of the configuration; "
                    "closed", _address(sock))
        sock.close()
    return listening


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _serves(spec: PortSpec, sock: socket.socket) -> bool:
    """Whether a passed socket is the one ``spec`` would have bound: same port, and the same
    address (a wildcard one for a ``<port>`` without address)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    host, port = sock.getsockname()[:2]
    if port != spec.port:
        return False
    if spec.address in (None, "*"):
        return host in ("0.0.0.0", "::")
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(spec.address.strip("[]"))
    except ValueError:  # a host name in <port>: compare what it resolves to
        try:
            infos = socket.getaddrinfo(spec.address, port, type=socket.SOCK_STREAM)
        except OSError:
            return False
        return any(ipaddress.ip_address(info[4][0]) == ipaddress.ip_address(host) for info in infos)
