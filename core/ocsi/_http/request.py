"""The request as every pipeline step sees it, and its streamed body.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from .headers import Headers

if TYPE_CHECKING:
    from .._pipeline.scope import SiteConfig


class BodyTooLarge(Exception):
    """The request body is larger than ``<maxrequestbodysize>`` (answered with 413)."""


class ClientDisconnected(Exception):
    """The client went away before sending the whole body."""


class BadRequestBody(ClientDisconnected):
    """The request body is malformed (bad chunk framing); answered with 400 and closed."""


class RequestTimeout(ClientDisconnected):
    """No byte of the request body arrived for ``read_timeout`` seconds (408)."""


class RequestBody:
    """The request body, fed by the connection as it arrives and read by at most one consumer.

    Reading applies back-pressure: the connection stops reading from the socket while more than
    ``high_water`` bytes wait here. ``Expect: 100-continue`` is answered on the first read, so a
    step that refuses the request without reading never makes the client send the body.
    """

    __slots__ = ("_chunks", "_buffered", "_done", "_error", "_waiter", "_on_read", "received",
                 "length", "limit", "high_water")

    def __init__(self, length: int | None, limit: int | None,
                 on_read: Callable[[], None] | None = None, high_water: int = 256 * 1024) -> None:
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = length == 0
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._on_read = on_read
        self.received = 0
        #: Declared ``Content-Length`` (``None`` for chunked bodies).
        self.length = length
        self.limit = limit
        self.high_water = high_water

    # -- connection side -------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.limit is not None and self.received > self.limit:
            self.fail(BodyTooLarge())
            return
        self._chunks.append(data)
        self._buffered += len(data)
        self._wake()

    def end(self) -> None:
        self._done = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._done = True
        self._wake()

    def wants_more(self) -> bool:
        return self._buffered < self.high_water

    @property
    def complete(self) -> bool:
        return self._done and not self._chunks and self._error is None

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- consumer side ---------------------------------------------------------------------------
    async def next_chunk(self) -> bytes:
        """Next piece of the body, ``b""`` at the end."""
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._on_read is not None:
                    self._on_read()
                return data
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            if self._on_read is not None:
                self._on_read()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.next_chunk():
            yield chunk

    async def read(self, max_size: int | None = None) -> bytes:
        """The whole body; raises :class:`BodyTooLarge` past ``max_size``."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self:
            size += len(chunk)
            if max_size is not None and size > max_size:
                raise BodyTooLarge()
            parts.append(chunk)
        return b"".join(parts)


class ClientLink(Protocol):
    """What a request knows of its client's connection: whether the client has gone.

    A client has gone when its connection was lost or it closed its sending side. The answer
    is still written if the socket allows it, but a step producing a long answer (a stream, a
    long poll) can stop early, as ASGI's ``http.disconnect`` asks.
    """

    @property
    def client_gone(self) -> bool: ...

    async def wait_client_gone(self) -> None: ...


class Request:
    """One HTTP request on its way through the hosts, sites and steps.

    Steps treat a request as immutable: to change it they answer with a modified copy
    (:meth:`replace`), which is how a ``<site>`` restores the request after its own steps, as
    Ocsigen does. ``segments`` are percent-decoded path segments; ``depth`` counts those consumed
    by enclosing sites, so :attr:`sub_path` is what a step inside a site works on.
    """

    __slots__ = (
        "method", "target", "raw_path", "query", "version", "headers", "host", "port", "secure",
        "client", "peer", "forwarded_for", "body", "raw_segments", "segments", "depth", "config",
        "stash", "retries", "site_path", "_host_header", "link",
    )

    def __init__(
        self,
        method: str,
        target: str,
        raw_path: str,
        query: str | None,
        version: str,
        headers: Headers,
        host: str | None,
        port: int,
        secure: bool,
        client: str,
        body: RequestBody | None,
        raw_segments: tuple[str, ...],
        segments: tuple[str, ...],
        host_header: str | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.raw_path = raw_path
        self.query = query
        self.version = version
        self.headers = headers
        self.host = host
        self.port = port
        self.secure = secure
        self.client = client
        #: The TCP peer, never rewritten (``client`` may become a forwarded address).
        self.peer = client
        #: Proxies named by a trusted ``X-Forwarded-For`` (empty unless accesscontrol set it).
        self.forwarded_for: tuple[str, ...] = ()
        self.body = body if body is not None else RequestBody(0, None)
        self.raw_segments = raw_segments
        self.segments = segments
        self.depth = 0
        self.site_path: tuple[str, ...] = ()
        self.config: SiteConfig = None  # type: ignore[assignment]  # set by the host before any step
        #: Per-request scratch space for extensions; shared by all copies of this request.
        self.stash: dict[str, Any] = {}
        self.retries = 0
        self._host_header = host_header
        #: The client's connection, set by the server (``None`` for requests built in memory).
        self.link: ClientLink | None = None

    # -- derived views ---------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    @property
    def sub_path(self) -> tuple[str, ...]:
        """Decoded segments below the current site (``("",)`` for the site's root)."""
        return self.segments[self.depth :]

    @property
    def sub_path_str(self) -> str:
        """Decoded sub-path without leading ``/``: what ``regexp`` attributes match."""
        return "/".join(self.segments[self.depth :])

    @property
    def raw_sub_path(self) -> str:
        """Still-encoded sub-path without leading ``/`` (for forwarding)."""
        return "/".join(self.raw_segments[self.depth :])

    @property
    def path(self) -> str:
        """Normalised, still-encoded full path with its leading ``/``."""
        return "/" + "/".join(self.raw_segments)

    @property
    def host_header(self) -> str | None:
        """The ``Host`` value as sent (with its port), for building absolute URLs."""
        return self._host_header

    @property
    def client_gone(self) -> bool:
        """The client closed or lost its connection (see :class:`ClientLink`)."""
        return self.link is not None and self.link.client_gone

    async def wait_client_gone(self) -> None:
        """Return once the client has gone; never, for a request without a connection."""
        if self.link is None:
            await asyncio.get_running_loop().create_future()
        else:
            await self.link.wait_client_gone()

    def replace(self, **changes: Any) -> Request:
        new = Request.__new__(Request)
        for name in Request.__slots__:
            setattr(new, name, getattr(self, name))
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    def with_target(self, target: str) -> Request:
        """A copy asking for ``target`` (``/path?query``), parsed as a request line's would be
        (percent-decoding, dot segments); ``ValueError`` (``BadTarget``) when it cannot be."""
        from .urlpath import decode_path, split_target

        raw_path, query, _, _ = split_target(target)
        raw_segments, segments = decode_path(raw_path)
        return self.replace(target=target, raw_path=raw_path, query=query,
                            raw_segments=raw_segments, segments=segments)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} host={self.host!r} depth={self.depth}>"
