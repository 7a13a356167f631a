"""After ``101 Switching Protocols``: the connection's bytes, both ways, to whoever asked.

A step that takes a connection over (a WebSocket proxied to a backend, an application speaking
WebSocket itself) answers ``Response(101, headers, TunnelBody(run))``. The connection layer
sends the head, then calls ``run(tunnel)`` with a :class:`Tunnel` over the same connection and
closes the connection when ``run`` returns. Reading has back-pressure (the socket is not read
while ``high_water`` bytes wait), writing waits for the client (:meth:`Tunnel.drain`).

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from .body import Body

__all__ = ["Tunnel", "TunnelBody"]


class TunnelBody(Body):
    """The "body" of a 101 answer: ``run(tunnel)`` speaks the new protocol."""

    __slots__ = ("run",)
    length = None

    def __init__(self, run: Callable[[Tunnel], Awaitable[None]]) -> None:
        self.run = run

    async def chunks(self) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover


class Tunnel:
    """One upgraded connection. ``read`` gives ``b""`` once the client has closed its side."""

    def __init__(self, transport: asyncio.Transport, drain: Callable[[], Awaitable[None]],
                 high_water: int = 256 * 1024) -> None:
        self._transport = transport
        self._drain = drain
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.high_water = high_water
        #: Bytes written to the client.
        self.sent = 0

    # -- the connection side -------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > self.high_water and not self._paused:
                self._paused = True
                self._transport.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- the side that speaks the new protocol -------------------------------------------------
    async def read(self) -> bytes:
        while not self._chunks:
            if self._eof or self._transport.is_closing():
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered <= self.high_water // 2:
            self._paused = False
            self._transport.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        if data and not self._transport.is_closing():
            self._transport.write(data)
            self.sent += len(data)

    async def drain(self) -> None:
        """Until the client has taken what was written (raises if it went away)."""
        await self._drain()

    def write_eof(self) -> None:
        """Half-close towards the client (a plain TCP connection only)."""
        if self._transport.can_write_eof() and not self._transport.is_closing():
            self._transport.write_eof()

    @property
    def closed(self) -> bool:
        return bool(self._transport.is_closing())
