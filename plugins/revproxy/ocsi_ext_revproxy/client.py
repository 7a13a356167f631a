"""The upstream side: HTTP/1.1 connections to backends and their pool.

A connection is an asyncio ``Protocol`` whose bytes go straight into an
:class:`ocsi.client.ResponseReader` (h11's parsers, the same arrangement as the server side): no stream
reader, no task or ``wait_for`` per read, a timer only while waiting. Request heads are written
by hand, and only when they meet the rules the server holds every request to
(:func:`ocsi.client.request_head_problem`): a step may have changed what the client sent, and a head
the proxy would refuse as a server is never written to a backend.

After a response the connection goes back to the pool only when both messages ended cleanly
and the backend has not said ``Connection: close``; an idle one is dropped after ``idle``
seconds (shorter than the idle timeout of common backends, 5 s for nginx's keepalive_timeout
and Node's), or as soon as the backend is seen to have closed it. The pool keeps at most
``size`` idle connections per origin.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import h11
from ocsi.client import (ResponseHead, ResponseReader, header_fields, request_head_problem,
                         response_framing)

from .destination import Origin

#: Largest response head accepted from a backend.
MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024
#: Bytes of response body buffered from the backend before reading from it pauses.
HIGH_WATER = 256 * 1024


class UpstreamClosed(ConnectionError):
    """The backend closed the connection (or broke the protocol) before the response ended."""


class ClientGone(Exception):
    """The client went away while the backend had not answered yet: there is nobody left to
    answer, so the request behind it is abandoned (nginx's default, ``proxy_ignore_client_abort
    off``)."""


#: While waiting for a backend, how often the client is looked at (a timer, re-armed: no task,
#: nothing at all for a backend that answers sooner).
GONE_POLL = 0.5


class UnwritableHead(ValueError):
    """The request head breaks the rules of a request head (a method that is not a token, a
    control character in a value…): nothing was written, the connection is as it was."""


class UpstreamConnection(asyncio.Protocol):
    """One connection to a backend; one exchange at a time."""

    def __init__(self, origin: Origin, tls_key: object) -> None:
        self.origin = origin
        self.tls_key = tls_key
        self.transport: Any = None
        self.reader = ResponseReader(MAX_HEAD)
        self.idle_since = time.monotonic()
        #: Requests sent on this connection so far (a reused one has sent at least one).
        self.exchanges = 0
        #: The current response's head has arrived / its end.
        self.answered = False
        self.finished = False
        self.keep_alive = True
        self._lost: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: What the pool files it under (see :func:`pool_key`).
        self.key = pool_key(origin, tls_key)
        self._drained: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused = False
        #: A head came by the fast path and its body's reader is not set yet (see next_event).
        self._body_pending = False
        self._method = "GET"
        #: After a 101: raw bytes from the backend go here instead of the parser.
        self.raw: asyncio.Queue[bytes] | None = None
        #: The current response's fields (lower-case names) and body framing.
        self.fields: Sequence[tuple[str, str]] = []
        self.framing: tuple[str, int] = ("length", 0)

    @classmethod
    async def open(cls, origin: Origin, tls: ssl.SSLContext | None, tls_key: object,
                   timeout: float) -> UpstreamConnection:
        """Connect (and handshake); OSError or TimeoutError when that fails in time."""
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(loop.create_connection(
            lambda: cls(origin, tls_key), origin.host, origin.port,
            ssl=tls if origin.secure else None,
            server_hostname=origin.host if origin.secure else None), timeout)
        return conn

    # -- asyncio callbacks -----------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and type(transport).__module__ != "uvloop.loop":
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        if self.raw is not None:
            self.raw.put_nowait(data)
            return
        self.reader.receive_data(data)
        if self.reader.buffered > HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        if self.raw is not None:
            self.raw.put_nowait(b"")
        self.reader.receive_data(b"")
        self.keep_alive = False
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or UpstreamClosed("the backend closed the connection")
        if self.raw is not None:
            self.raw.put_nowait(b"")
        self.reader.receive_data(b"")
        self.keep_alive = False
        self._wake()
        d = self._drained
        if d is not None and not d.done():
            d.set_exception(UpstreamClosed("the backend closed the connection"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        d = self._drained
        if d is not None and not d.done():
            d.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- sending -------------------------------------------------------------------------------
    def start(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        """Write the request head; :class:`UnwritableHead` (and nothing written) when it breaks
        the rules the server holds requests to. Names are lower-case, which HTTP/1.1 allows."""
        problem = request_head_problem(method, target, headers)
        if problem is not None:
            raise UnwritableHead(problem)
        self.exchanges += 1
        self.answered = self.finished = self._body_pending = False
        self._method = method
        self.reader.start_response()
        fields = "\r\n".join(map(": ".join, headers))  # (name, value) pairs joined in C
        head = f"{method} {target} HTTP/1.1\r\n{fields}\r\n\r\n" if headers else \
            f"{method} {target} HTTP/1.1\r\n\r\n"
        self.transport.write(head.encode("latin-1"))

    def write(self, data: bytes) -> None:
        """Write to the backend; :class:`UpstreamClosed` once it has gone (uvloop raises a
        RuntimeError on a closed handle, which would read as a failure of the relay)."""
        if self._lost is not None or self.transport.is_closing():
            raise UpstreamClosed("the backend closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        if self._lost is not None:
            raise UpstreamClosed("the backend closed the connection")
        if self._write_paused:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None

    async def send_chunk(self, data: bytes) -> None:
        """One piece of a chunked request body."""
        if data:
            self.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
            await self.drain()

    def end_chunks(self) -> None:
        self.transport.write(b"0\r\n\r\n")

    # -- receiving -----------------------------------------------------------------------------
    async def next_event(self, timeout: float | None,
                         gone: Callable[[], bool] | None = None) -> Any:
        """The next response event: the head (a :class:`ocsi.client.ResponseHead` for the usual
        one, else ``h11.Response`` / ``InformationalResponse``), ``h11.Data``,
        ``h11.EndOfMessage``. TimeoutError when the backend is silent for
        ``timeout``; :class:`UpstreamClosed` when it closes or breaks the protocol;
        :class:`ClientGone` when ``gone()`` turns true while waiting."""
        reader = self.reader
        while True:
            if not self.answered:
                if not reader.buffered and not reader.closed and not self._read_paused:
                    await self._wait(timeout, gone)  # the usual turn: nothing there yet
                    continue
                fast = reader.read_head()  # the usual head: fields and framing in one pass
                if fast is not None:
                    self._fast_head(fast)
                    return fast
            elif self._body_pending:
                self._body_pending = False
                reader.start_body(*self.framing)
            try:
                event = reader.next_event()
            except h11.RemoteProtocolError as exc:
                self.keep_alive = False
                if reader.closed:
                    raise UpstreamClosed(self._closed_while()) from None
                raise UpstreamClosed(f"invalid response: {exc}") from None
            if event is h11.NEED_DATA:
                if self._read_paused:
                    self._read_paused = False
                    self.transport.resume_reading()
                await self._wait(timeout, gone)
                continue
            kind = type(event)
            if kind is h11.ConnectionClosed:
                raise UpstreamClosed(self._closed_while())
            if kind is h11.Response:
                self._head(event)
            elif kind is h11.EndOfMessage:
                self.finished = True
            return event

    def _fast_head(self, head: ResponseHead) -> None:
        """What :meth:`_head` does, from a head whose fields are read already."""
        self.answered = True
        self.fields = head.fields
        framing, length = self.framing = head.framing(self._method)
        self._body_pending = True  # the reader is set for the body only if it is read by events
        if framing == "close" or head.http_version != b"1.1":
            self.keep_alive = False
        if head.repeated:
            for name, value in head.fields:
                if name == "connection" and "close" in value.lower():
                    self.keep_alive = False
        else:
            connection = head.by_name.get("connection")
            if connection is not None and "close" in connection.lower():
                self.keep_alive = False

    def take_whole(self) -> bytes | None:
        """:meth:`whole_body` when all of it is there already (no coroutine), else ``None``."""
        body = self.reader.take_body(self.framing[1])
        if body is not None:
            self._body_pending = False
            self.finished = True
        return body

    async def whole_body(self, timeout: float | None) -> bytes:
        """The body of a response framed by its ``Content-Length``, read whole (the caller
        knows it is small): taken from the buffer at once when it came with the head, the usual
        case, with no event per piece. TimeoutError when the backend is silent for ``timeout``
        between two reads; :class:`UpstreamClosed` when it closes before the end."""
        framing, length = self.framing
        assert framing == "length"
        reader = self.reader
        while True:
            body = reader.take_body(length)
            if body is not None:
                self._body_pending = False
                self.finished = True
                return body
            if reader.closed:
                self.keep_alive = False
                raise UpstreamClosed(self._closed_while())
            if self._read_paused:
                self._read_paused = False
                self.transport.resume_reading()
            await self._wait(timeout)

    def _head(self, head: h11.Response) -> None:
        self.answered = True
        fields = self.fields = header_fields(head.headers)
        framing, length = self.framing = response_framing(self._method, head.status_code, fields)
        self.reader.start_body(framing, length)
        if framing == "close" or head.http_version != b"1.1":
            self.keep_alive = False
        for name, value in fields:
            if name == "connection" and "close" in value.lower():
                self.keep_alive = False

    async def _wait(self, timeout: float | None, gone: Callable[[], bool] | None = None) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if gone is None:
            self._timer = loop.call_later(timeout, _expire, waiter) \
                if timeout is not None else None
        else:
            self._timer = loop.call_later(
                GONE_POLL if timeout is None else min(GONE_POLL, timeout), self._watch, waiter,
                gone, None if timeout is None else loop.time() + timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            timer = self._timer  # the last one armed
            if timer is not None:
                self._timer = None
                timer.cancel()

    def _watch(self, waiter: asyncio.Future[None], gone: Callable[[], bool],
               deadline: float | None) -> None:
        """While waiting: is the client gone, is the time up? Else look again (a method, not
        a closure: nothing made per wait but the timer)."""
        if waiter.done():
            return
        if gone():
            waiter.set_exception(ClientGone())
            return
        loop = waiter.get_loop()
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            _expire(waiter)
            return
        self._timer = loop.call_later(GONE_POLL if left is None else min(GONE_POLL, left),
                                      self._watch, waiter, gone, deadline)

    def _closed_while(self) -> str:
        if not self.answered:
            return "the backend closed the connection without answering"
        return "the backend closed the connection"

    # -- after a 101 ---------------------------------------------------------------------------
    def switch(self) -> bytes:
        """Stop parsing: what the backend sends from now on is raw (a WebSocket). Returns
        what it had already sent after its 101 head."""
        self.raw = asyncio.Queue()
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        return self.reader.take_buffered()

    # -- life ----------------------------------------------------------------------------------
    def reusable(self) -> bool:
        return (self.finished and self.keep_alive and self._lost is None
                and not self.transport.is_closing() and not self.reader.buffered)

    def fresh(self, idle: float) -> bool:
        """Still usable after waiting in the pool: not too old, not closed by the backend."""
        return (time.monotonic() - self.idle_since < idle and self._lost is None
                and not self.reader.closed and not self.transport.is_closing())

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.abort()  # nothing more to say to it; no lingering TLS shutdown either


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


def pool_key(origin: Origin, tls_key: object) -> object:
    """Where the pool files a connection: by origin, and by TLS settings for HTTPS. Plain
    strings and numbers for plain HTTP, whose hash is C's (an ``Origin``'s and TLS settings'
    are dataclass methods, in Python, and the pool is looked in twice a request)."""
    if origin.scheme == "http":
        return origin.host, origin.port
    return origin, tls_key


class Pool:
    """Idle connections by origin (and TLS settings), most recently used first."""

    def __init__(self, size: int = 32, idle: float = 4.0) -> None:
        self.size = size
        self.idle = idle
        self._idle: dict[object, list[UpstreamConnection]] = defaultdict(list)
        self.opened = 0

    def take(self, origin: Origin, tls_key: object) -> UpstreamConnection | None:
        """An idle connection that is still good, or None."""
        idle = self._idle.get((origin.host, origin.port) if origin.scheme == "http"
                              else (origin, tls_key))  # pool_key(), without a call
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
        if not conn.reusable() or self.size == 0:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle = self._idle[conn.key]
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
