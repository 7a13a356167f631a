"""Listening sockets: one ``<port>`` becomes one socket per address family, bound before the
server drops privileges and before workers fork.

With workers on Linux (``<reuseport>``, on by default), every worker gets its own socket per
``<port>`` and family, all bound by the master with ``SO_REUSEPORT`` to the same address: the
kernel spreads new connections over the workers' accept queues instead of one shared queue
that whichever worker wakes first empties (as nginx's ``listen … reuseport``). The master keeps
its copy of each, so a worker that dies leaves its socket open, with the connections queued on
it, for its replacement. Elsewhere, and for sockets passed by systemd, every worker serves the
same sockets. See docs/architecture.md, "Workers and their sockets".

Private: not part of the extension API.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import ssl
import sys
from dataclasses import dataclass, field

from ._config.settings import PortSpec, ServerSettings
from .logs import NOTICE
from .systemd import listen_fds
from .tls import listener_context, server_context

__all__ = ["Listening", "StartupError", "announce", "open_listeners", "reuseport_available"]

log = logging.getLogger("ocsi.main")


class StartupError(Exception):
    """The server could not start (bind failure…); ``exit_code`` follows Ocsigen (9: system error)."""

    def __init__(self, message: str, exit_code: int = 9) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def reuseport_available() -> bool:
    """Whether ``SO_REUSEPORT`` spreads connections over the sockets bound with it: Linux's
    does (a hash of the connection's addresses and ports picks one); the BSDs' and macOS's give
    every connection to one socket, which would leave the other workers idle."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _bind(spec: PortSpec, port: int | None = None, *, reuseport: bool = False,
          listen: bool = True) -> list[socket.socket]:
    """Listening sockets for one ``<port>``: a bare port listens on IPv4 and IPv6. ``port``
    overrides ``spec``'s (the one the kernel chose for ``0``); ``reuseport`` joins the group of
    sockets bound there with ``SO_REUSEPORT``; without ``listen``, the sockets are only bound
    (a probe that the address is free)."""
    if spec.address is None:
        targets = [(socket.AF_INET, "0.0.0.0")]
        if socket.has_ipv6:
            targets.append((socket.AF_INET6, "::"))
    else:
        family = socket.AF_INET6 if ":" in spec.address else socket.AF_INET
        targets = [(family, spec.address)]
    socks: list[socket.socket] = []
    port = spec.port if port is None else port
    for family, addr in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuseport:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
            if listen:
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


def _bind_group(spec: PortSpec, count: int) -> list[list[socket.socket]]:
    """``count`` sets of :func:`_bind`'s sockets on one address, bound with ``SO_REUSEPORT``.

    The address is first bound once without ``SO_REUSEPORT`` (and released): a socket of the
    same user in a ``SO_REUSEPORT`` group there (a second ocsi started by mistake) would
    otherwise be joined silently and share the connections, where one ``<port>`` that cannot
    be bound must stop the start. That probe also chooses the port for ``0``."""
    probe = _bind(spec, listen=False)
    port = probe[0].getsockname()[1] if probe else spec.port
    for sock in probe:
        sock.close()
    groups: list[list[socket.socket]] = []
    try:
        for _ in range(count):
            groups.append(_bind(spec, port, reuseport=True))
    except BaseException:
        for group in groups:
            for sock in group:
                sock.close()
        raise
    return groups


@dataclass
class Listening:
    """Bound listening sockets, each with its ``<port>``, and the TLS context of the HTTPS ones.

    Built by :func:`open_listeners`; the worker master builds one and hands each worker its
    part (:meth:`for_worker`), which its Server serves instead of binding its own.
    """

    sockets: list[tuple[PortSpec, socket.socket]]
    tls: ssl.SSLContext | None = None
    #: The UDP sockets of the ``http3="true"`` ports (:mod:`ocsi.quic`).
    quic: list[tuple[PortSpec, socket.socket]] = field(default_factory=list)
    #: The workers that serve a socket, for those that not every worker serves (``SO_REUSEPORT``).
    owners: dict[socket.socket, frozenset[int]] = field(default_factory=dict)

    def close(self) -> None:
        for _, sock in self.sockets + self.quic:
            sock.close()

    def announce(self) -> None:
        """One notice per ``<port>``, with a URL to open: what a user waits for at start."""
        announce([(spec, sock.getsockname()[1]) for spec, sock in self.sockets])

    def for_worker(self, index: int) -> Listening:
        """Worker ``index``'s part: its own sockets and the shared ones (every UDP socket too:
        :func:`ocsi.quic.serve_quic` decides). Called in the worker, which then closes its
        copies of the others' sockets (:meth:`close_others`)."""
        mine = [(spec, sock) for spec, sock in self.sockets
                if index in self.owners.get(sock, (index,))]
        return Listening(mine, self.tls, self.quic)

    def close_others(self, mine: Listening) -> None:
        """Close the copies of the sockets ``mine`` does not hold. A worker must not keep
        another's socket open: once that worker stops listening, the kernel must stop
        queueing connections there, which it does only when no process holds it."""
        kept = {id(sock) for _, sock in mine.sockets}
        for _, sock in self.sockets:
            if id(sock) not in kept:
                sock.close()

    @property
    def per_worker(self) -> bool:
        """Whether workers have sockets of their own (``SO_REUSEPORT``)."""
        return bool(self.owners)


def announce(bound: list[tuple[PortSpec, int]]) -> None:
    """Log ``Listening on URL`` once per ``<port>`` (its IPv4 and IPv6 sockets are one line)."""
    seen: set[str] = set()
    for spec, port in bound:
        url = spec.url(port)
        if url not in seen:
            seen.add(url)
            log.log(NOTICE, "Listening on %s", url)


def open_listeners(s: ServerSettings, workers: int = 1) -> Listening:
    """The TLS context (wrong password: exit 10) and every ``<port>``'s sockets (else exit 9).

    Sockets passed by systemd (socket activation) or by the process this one upgrades serve
    the ``<port>`` whose address they are bound to; only the ``<port>`` elements none of them
    serves are bound here. With ``workers`` above 1 and ``<reuseport>`` on Linux, each worker
    gets a socket of its own per address (:func:`_bind_group`); passed sockets are not
    multiplied (systemd binds one), but several passed at one address (the workers' sockets
    of an upgraded master) are shared out among the workers (:func:`_share_out`)."""
    per_worker = workers > 1 and s.reuseport and reuseport_available()
    tls: ssl.SSLContext | None = None
    https = [p for p in s.ports if p.https]
    if https and s.ssl is not None and s.ssl.certificate:
        tls = server_context(s.ssl, ", ".join(str(p.port) for p in https))
    elif https:  # every certificate from ACME (ocsi._acme), chosen per handshake
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
            if workers > 1:
                listening.owners.update(_share_out(inherited, workers))
            if not spec.http3:
                continue
        try:
            if inherited:
                tcp = _distinct(inherited)
            elif per_worker:
                groups = _bind_group(spec, workers)
                for index, group in enumerate(groups):
                    listening.sockets += [(spec, sock) for sock in group]
                    listening.owners.update((sock, frozenset({index})) for sock in group)
                tcp = groups[0]
            else:
                tcp = _bind(spec)
                listening.sockets += [(spec, sock) for sock in tcp]
            if spec.http3:  # UDP beside each TCP address, passed too or bound here
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


def _distinct(socks: list[socket.socket]) -> list[socket.socket]:
    """One socket per address (the first), for the UDP sockets bound beside them."""
    seen: dict[tuple[object, ...], socket.socket] = {}
    for sock in socks:
        seen.setdefault((sock.family, *sock.getsockname()[:2]), sock)
    return list(seen.values())


def _share_out(socks: list[socket.socket], workers: int) -> dict[socket.socket, frozenset[int]]:
    """Which workers serve each of several sockets passed at one address (an upgraded master's
    ``SO_REUSEPORT`` group): each socket at least one worker, each worker at least one socket,
    so no socket is left with connections queued and nobody to accept them. Worker ``i`` takes
    the sockets ``j`` with ``j % workers == i``, and socket ``i % k`` (of ``k``) when there are
    fewer sockets than workers. A single socket at an address is every worker's."""
    by_address: dict[tuple[object, ...], list[socket.socket]] = {}
    for sock in socks:
        by_address.setdefault((sock.family, *sock.getsockname()[:2]), []).append(sock)
    owners: dict[socket.socket, frozenset[int]] = {}
    for group in by_address.values():
        k = len(group)
        if k == 1:
            continue
        for j, sock in enumerate(group):
            owners[sock] = frozenset({j % workers} | {i for i in range(workers) if i % k == j})
    return owners


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
