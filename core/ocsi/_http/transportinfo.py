"""What a connection learns from its transport, and the one option it sets on it.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import socket

from .incoming import peer_address

__all__ = ["alpn", "peer_address", "set_nodelay"]


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Disable Nagle's algorithm. asyncio only does it for sockets whose ``proto`` is
    ``IPPROTO_TCP``, which excludes those accepted from a listening socket made with
    ``socket.socket()`` (proto 0); a head and a body written separately then wait for the
    client's delayed ACK: 40 ms per response. uvloop sets it on every TCP transport itself,
    and asking it for the socket object costs a few microseconds per connection: skipped."""
    if type(transport).__module__ == "uvloop.loop":
        return
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def alpn(transport: asyncio.BaseTransport) -> str | None:
    """The protocol the TLS handshake chose by ALPN (``h2``, ``http/1.1``), if any."""
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object.selected_alpn_protocol() if ssl_object is not None else None
