"""The upstream side: HTTP/1.1 connections to backends (h11 on asyncio streams) and their pool.

A connection is h11's client state machine over one socket. After a response it goes back to
the pool only when both sides are done with the exchange and the backend has not said
``Connection: close``; an idle one is dropped after ``idle`` seconds (shorter than the idle
timeout of common backends, 5 s for nginx's keepalive_timeout and Node's), or as soon as the
backend is seen to have closed it. The pool keeps at most ``size`` idle connections per origin.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict

import h11

from .destination import Origin

#: Largest response head accepted from a backend.
MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024


class UpstreamClosed(ConnectionError):
    """The backend closed the connection (or broke the protocol) before the response ended."""


class UpstreamConnection:
    __slots__ = ("origin", "tls_key", "reader", "writer", "h11", "idle_since", "exchanges",
                 "answered")

    def __init__(self, origin: Origin, tls_key: object, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self.tls_key = tls_key
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.idle_since = time.monotonic()
        #: Requests sent on this connection so far (a reused one has sent at least one).
        self.exchanges = 0
        #: The current request's response head has arrived.
        self.answered = False

    @classmethod
    async def open(cls, origin: Origin, tls: ssl.SSLContext | None, tls_key: object,
                   timeout: float) -> UpstreamConnection:
        """Connect (and handshake); OSError or TimeoutError when that fails in time."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            origin.host, origin.port, ssl=tls if origin.secure else None,
            server_hostname=origin.host if origin.secure else None,
            limit=READ_SIZE * 4), timeout)
        return cls(origin, tls_key, reader, writer)

    # -- sending -------------------------------------------------------------------------------
    async def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    def start(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        """Write the request head (without waiting: the body or the answer follows)."""
        self.exchanges += 1
        self.answered = False
        data = self.h11.send(h11.Request(method=method, target=target, headers=headers))
        self.writer.write(data)

    # -- receiving -----------------------------------------------------------------------------
    async def next_event(self, timeout: float | None) -> h11.Event:
        """The next response event; TimeoutError when the backend is silent for ``timeout``."""
        conn = self.h11
        eof = False
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if eof:
                    raise UpstreamClosed(self._closed_while()) from None
                raise UpstreamClosed(f"invalid response: {exc}") from None
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
                eof = not data
                conn.receive_data(data)
                continue
            if type(event) is h11.ConnectionClosed:
                raise UpstreamClosed(self._closed_while())
            if type(event) is h11.Response:
                self.answered = True
            return event  # type: ignore[return-value]  # NEED_DATA and PAUSED are handled above

    def _closed_while(self) -> str:
        if not self.answered:
            return "the backend closed the connection without answering"
        return "the backend closed the connection"

    # -- life ----------------------------------------------------------------------------------
    def reusable(self) -> bool:
        conn = self.h11
        return (conn.our_state is h11.DONE and conn.their_state is h11.DONE
                and not self.reader.at_eof() and not self.writer.is_closing())

    def fresh(self, idle: float) -> bool:
        """Still usable after waiting in the pool: not too old, not closed by the backend."""
        return (time.monotonic() - self.idle_since < idle and not self.reader.at_eof()
                and not self.writer.is_closing())

    def close(self) -> None:
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()  # nothing more to say to it; no lingering TLS shutdown either


class Pool:
    """Idle connections by origin (and TLS settings), most recently used first."""

    def __init__(self, size: int = 32, idle: float = 4.0) -> None:
        self.size = size
        self.idle = idle
        self._idle: dict[tuple[Origin, object], list[UpstreamConnection]] = defaultdict(list)
        self.opened = 0

    def take(self, origin: Origin, tls_key: object) -> UpstreamConnection | None:
        """An idle connection that is still good, or None."""
        idle = self._idle.get((origin, tls_key))
        while idle:
            conn = idle.pop()
            if conn.fresh(self.idle):
                return conn
            conn.close()
        return None

    async def connect(self, origin: Origin, tls: ssl.SSLContext | None, tls_key: object,
                      timeout: float) -> UpstreamConnection:
        conn = await UpstreamConnection.open(origin, tls, tls_key, timeout)
        self.opened += 1
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Back to the pool if the exchange ended cleanly, else closed."""
        if not conn.reusable():
            conn.close()
            return
        conn.h11.start_next_cycle()
        conn.idle_since = time.monotonic()
        idle = self._idle[(conn.origin, conn.tls_key)]
        idle.append(conn)
        while len(idle) > self.size:
            idle.pop(0).close()

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
