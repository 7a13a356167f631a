"""Response bodies: in-memory bytes, a region of an open file, or an async stream.

The connection layer looks at the concrete type: a :class:`FileBody` on a plain socket goes out
with ``sendfile`` (the kernel copies, Python never sees the bytes); anything else is iterated in
chunks. Filters that need the bytes (compression) iterate any body with :meth:`Body.chunks`, which
for a file reads bounded chunks, so nothing ever holds a whole file or upstream response.

Private: not part of the extension API.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

#: Read size for files that cannot be sent with ``sendfile`` (TLS, filters).
FILE_CHUNK = 256 * 1024


class Body:
    """Base class: ``length`` is the exact byte count, or ``None`` when unknown (chunked)."""

    length: int | None = None

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the body holds (file descriptors, upstream connections). Idempotent."""


class BytesBody(Body):
    """Bytes in memory. ``identity``: when they are a whole file's contents (a static file kept
    in memory), the file's ``(device, inode, size, modification time in ns)``, so that a filter
    caching what it makes of a file (deflatemod) can key it as it would a :class:`FileBody`."""

    __slots__ = ("data", "length", "identity")

    def __init__(self, data: bytes = b"",
                 identity: tuple[int, int, int, int] | None = None) -> None:
        self.data = data
        self.length = len(data)
        self.identity = identity

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.data:
            yield self.data


EMPTY = BytesBody(b"")


class FileBody(Body):
    """``length`` bytes of an open file descriptor starting at ``offset``.

    The body owns the descriptor and closes it in :meth:`aclose`. It may be sent several times
    only if the caller re-creates it: reading does not move a shared file position (``pread``).
    """

    #: Bytes read per chunk when the file is not sent with ``sendfile``.
    CHUNK = FILE_CHUNK

    __slots__ = ("fd", "offset", "length", "_closed")

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self._closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        pos, end = self.offset, self.offset + (self.length or 0)
        while pos < end:
            data = os.pread(self.fd, min(FILE_CHUNK, end - pos), pos)
            if not data:  # the file shrank under us: stop rather than loop
                raise OSError(f"file truncated while sending at offset {pos}")
            pos += len(data)
            yield data

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the descriptor now (idempotent); closing never blocks, so no await needed."""
        if not self._closed:
            self._closed = True
            os.close(self.fd)


class StreamBody(Body):
    """Bytes from an async iterable; ``close`` is awaited once when the body is done or dropped.

    ``trailers``: fields the producer sets by the time its iteration ends; sent after a
    chunked body when the client asked for them (``TE: trailers``), dropped otherwise.
    """

    __slots__ = ("source", "length", "_close", "_closed", "trailers")

    def __init__(
        self,
        source: AsyncIterable[bytes],
        length: int | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.source = source
        self.length = length
        self._close = close
        self._closed = False
        self.trailers: list[tuple[str, str]] | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.source:
            if chunk:
                yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self.source, "aclose", None)
        if aclose is not None:
            await aclose()
        if self._close is not None:
            await self._close()


def one_piece(body: Body, most: int) -> bytes | None:
    """``body``'s bytes at once when it is plain bytes, or a file of at most ``most`` bytes (read
    now, as :meth:`FileBody.chunks` would, and :class:`OSError` if it shrank); ``None`` for any
    other body, to be iterated. Exact types only, as :func:`~.exchange.close_plain_body`."""
    t = type(body)
    if t is BytesBody:
        return body.data  # type: ignore[attr-defined, no-any-return]  # t is BytesBody
    if t is FileBody and (body.length or 0) <= most:
        length = body.length or 0
        fd, offset = body.fd, body.offset  # type: ignore[attr-defined]  # t is FileBody
        data = os.pread(fd, length, offset) if length else b""
        if len(data) != length:
            raise OSError(f"file truncated while sending at offset {offset + len(data)}")
        return data
    return None


async def send_ending(body: Body, send: Callable[[bytes, bool], Awaitable[None]]) -> int:
    """Hand ``body``'s pieces to ``send(data, end)`` one behind, so that the last one carries
    the end of the stream (HTTP/2's END_STREAM, HTTP/3's FIN: a small answer is one frame, and
    an empty body one empty end); the number of bytes sent."""
    sent = 0
    pending: bytes | None = None
    async for chunk in body.chunks():
        if pending is not None:
            await send(pending, False)
            sent += len(pending)
        pending = chunk
    await send(pending or b"", True)
    return sent + len(pending or b"")
