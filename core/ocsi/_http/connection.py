"""The connection manager: what every HTTP/1.1 connection of a server shares.

The server creates one :class:`ConnectionManager`, passes ``protocol_factory(port, secure)`` to
``loop.create_server`` for each listener, swaps ``app`` (the pipeline) and ``limits`` on reload,
and calls :meth:`ConnectionManager.shutdown` after closing the listeners. The per-connection
machinery is in :mod:`.protocol` (reading, the connection's task) and :mod:`.sending` (writing).

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from .access import AccessRecord
from .limits import Limits
from .protocol import BadRequestBody, HTTPProtocol, RequestTimeout
from .shared import App
from .wire import server_line

if TYPE_CHECKING:
    from .h2conn import H2Protocol

#: An open connection: HTTP/1.1, or HTTP/2 after ALPN chose it.
Connection = Union[HTTPProtocol, "H2Protocol"]

__all__ = ["App", "BadRequestBody", "ConnectionManager", "HTTPProtocol", "RequestTimeout"]

log = logging.getLogger("ocsi.http")



class ConnectionManager:
    """Shared by every connection of a server.

    ``app`` and ``limits`` may be replaced at any time (reload): a request keeps the app it
    started with; new connections and new requests use the new limits. ``access_log`` is called
    once per response sent, including the error responses made here (400, 408, 413, 414, 431,
    503, 505…).
    """

    def __init__(self, app: App, limits: Limits,
                 access_log: Callable[[AccessRecord], None] | None = None) -> None:
        self.app = app
        self.limits = limits
        self.access_log = access_log
        #: Send large files with ``os.sendfile`` on plain (non-TLS) connections.
        self.use_sendfile = True
        self._conns: set[Connection] = set()
        #: Requests being answered (the connections count them in and out).
        self.in_flight = 0
        #: Shutting down: no new request is started, connections close after their response.
        self.closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._empty: asyncio.Future[None] | None = None

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        #: The ``Server:`` header line every response head carries.
        self.server_line = server_line(limits.server_name)
        self._limits = limits

    def protocol_factory(self, port: int, secure: bool,
                         h2c: bool = False) -> Callable[[], asyncio.Protocol]:
        """The factory for ``loop.create_server``: ``port`` is the listening port (it becomes
        ``Request.port``), ``secure`` tells a TLS listener (``Request.secure``), ``h2c`` that a
        plain one also takes HTTP/2 with prior knowledge."""
        return functools.partial(HTTPProtocol, self, port, secure, h2c)

    @property
    def active(self) -> int:
        """Open connections (refused ones excluded)."""
        return len(self._conns)

    @property
    def connections(self) -> frozenset[Connection]:
        """The open connections."""
        return frozenset(self._conns)

    def has_room(self) -> bool:
        """Whether one more connection may be served (below ``max_connections``). While
        closing, the only new connections are those accepted just before the listeners
        closed: they are served, with ``Connection: close``."""
        return len(self._conns) < self._limits.max_connections

    def reloaded(self) -> None:
        """A reload took effect: each connection is told (HTTP/2 ones send GOAWAY)."""
        for c in list(self._conns):
            c.reloaded()

    async def shutdown(self, timeout: float | None) -> None:
        """Close idle connections now, let requests in flight finish (their connection closes
        after the response) for up to ``timeout`` seconds (``None``: no limit), then abort what
        is left. Call it after the listeners are closed; returns when no connection remains."""
        self.closing = True
        for c in list(self._conns):
            c.shutdown()
        if self._conns:
            try:
                await asyncio.wait_for(asyncio.shield(self._empty_future()), timeout)
            except (asyncio.TimeoutError, TimeoutError):
                pass
        while self._conns:
            for c in list(self._conns):
                c.abort()
            await asyncio.wait([self._empty_future()], timeout=1.0)

    async def wait_idle(self) -> None:
        """Return once no connection is open (tests drive connections in memory with it)."""
        await asyncio.shield(self._empty_future())

    # -- what connections call -----------------------------------------------------------------
    def _empty_future(self) -> asyncio.Future[None]:
        if self._empty is None or self._empty.done():
            self._empty = asyncio.get_running_loop().create_future()
            if not self._conns:
                self._empty.set_result(None)
        return self._empty

    def register(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        """A connection starts being served; its deadlines are checked from now on."""
        self._conns.add(conn)
        if self._timer is None:
            self._loop = loop
            self._schedule()

    def unregister(self, conn: Connection) -> None:
        """A connection is over."""
        # The sweep timer is left running: it stops by itself at its next tick when no
        # connection is left. Cancelling it here and re-arming it on the next accept cost a
        # timer per connection when each request comes on a new one (Connection: close).
        self._conns.discard(conn)
        if not self._conns and self._empty is not None and not self._empty.done():
            self._empty.set_result(None)

    def _schedule(self) -> None:
        lim = self._limits
        every = min(lim.header_timeout, lim.read_timeout, lim.keepalive_timeout) / 8
        every = min(1.0, max(0.02, every))
        assert self._loop is not None
        self._timer = self._loop.call_later(every, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        for c in list(self._conns):
            try:
                c.check_deadlines(now)
            except Exception:
                log.exception("error in the timeout sweep")
                c.abort()
        if self._conns:
            self._schedule()
