"""A multiplexed stream's request head into a :class:`Request`: what HTTP/2 and HTTP/3 share.

Both protocols hand over a request as pseudo-header fields and regular fields (each checked by
its own library and, for HTTP/2, by :mod:`.h2fields`). From there the request is built the same
way: ``:authority`` standing for ``Host`` (and added as one), the body's declared length, the
character rules every protocol holds a head to (:mod:`.fieldcheck`), the target split and
decoded, the host checked as an HTTP/1.1 ``Host`` is.

Private: not part of the extension API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .fieldcheck import request_head_problem
from .headers import Headers
from .incoming import HeadError, host_text
from .request import Request, RequestBody

if TYPE_CHECKING:
    import asyncio

    from .response import Response
from .urlpath import BadTarget, decode_path, split_target

__all__ = ["build_request", "stream_head"]


def stream_head(pseudo: dict[bytes, bytes], regular: list[tuple[str, str]],
                ended: bool) -> tuple[str, str, str | None, int | None]:
    """``(method, target, Host, body length)`` of a stream's head; ``regular`` gains a
    ``host`` field from ``:authority`` when it has none. ``ended``: the head ended the stream
    (no body). The length is ``None`` when unknown (no ``content-length``)."""
    method = pseudo.get(b":method", b"GET").decode("latin-1")
    target = pseudo.get(b":path", b"").decode("latin-1")  # none: CONNECT, refused later
    authority = pseudo.get(b":authority")
    host = authority.decode("latin-1") if authority else None
    if host is None:
        host = next((v for n, v in regular if n == "host"), None)
    elif not any(n == "host" for n, _ in regular):
        regular.append(("host", host))
    if ended:
        return method, target, host, 0
    length_text = next((v for n, v in regular if n == "content-length"), None)
    return method, target, host, int(length_text) if length_text and length_text.isdigit() \
        else None


def build_request(method: str, target: str, regular: list[tuple[str, str]], host: str | None,
                  version: str, port: int, secure: bool, client: str,
                  body: RequestBody) -> Request:
    """The request of a stream's head; :class:`HeadError` (400) for a head the character
    rules, the target or the host refuse."""
    problem = request_head_problem(method, target, regular, pseudo=True)
    if problem is not None:
        raise HeadError(400, problem)
    try:
        raw_path, query, _, _ = split_target(target)
        raw_segments, segments = decode_path(raw_path)
    except BadTarget as exc:
        raise HeadError(400, str(exc)) from None
    # the same check and lower-casing as an HTTP/1.1 Host header
    hostname = host_text(host)[1] if host else None
    return Request(method, target, raw_path, query, version, Headers.from_lower(regular),
                   hostname, port, secure, client, body, raw_segments, segments, host)


class StreamSender(Protocol):
    """What a stream needs of its connection (HTTP/2's and HTTP/3's protocols)."""

    _loop: asyncio.AbstractEventLoop

    async def _send(self, sid: int, response: Response, head_only: bool) -> int:
        """Write ``response`` on stream ``sid``; the body bytes handed to the transport."""
        ...


class StreamLink:
    """One request stream being answered, over HTTP/2 or HTTP/3: its request body, and the
    exchange's link to the wire (:class:`~.exchange.Link`)."""

    __slots__ = ("body", "task", "ended", "conn", "sid", "head_only", "_loop")

    def __init__(self, body: RequestBody, conn: StreamSender, sid: int, method: str) -> None:
        self.body = body
        self.task: asyncio.Task[None] | None = None
        #: The client has finished sending (END_STREAM).
        self.ended = False
        self.conn = conn
        self.sid = sid
        self.head_only = method == "HEAD"
        self._loop = conn._loop

    def owed(self) -> int:
        """Nothing is owed because of a stream's body: its errors are the application's."""
        return 0

    async def deliver(self, req: Request | None, response: Response) -> tuple[int, int]:
        """The exchange's way out: HEADERS, then DATA frames."""
        return response.status, await self.conn._send(self.sid, response, self.head_only)
