"""``requestbuffer``: a chunked request body sent to the backend with a ``Content-Length``.

An HTTP/1.0 backend (Python's ``http.server``, many small ones) cannot read a chunked body:
it sees no ``Content-Length`` and reads nothing, so the request arrives empty. As nginx's
``proxy_request_buffering``, the body is read whole first, up to a bound, then sent with its
length. It is held in memory up to :data:`MEMORY` bytes and spooled to a temporary file past
that, so a large bound never means a large process; a body over the bound is refused with 413
before anything reaches the backend.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator

from ocsi import Request

#: Bytes of a buffered body kept in memory; more goes to a temporary file.
MEMORY = 256 * 1024
#: The bound for a backend seen answering in HTTP/1.0 when ``requestbuffer`` is not given.
DEFAULT_LIMIT = 1024 * 1024
PIECE = 64 * 1024


class BodyTooLarge(Exception):
    """The body is over the bound: 413."""


class SpooledBody:
    """A request body read whole: its size, and its bytes again for the backend."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=MEMORY)
        self.size = 0
        #: Sending has begun: whoever sends closes it.
        self.started = False

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    async def pieces(self) -> AsyncIterator[bytes]:
        """Its bytes from the start, in pieces (the file is read off the event loop once it
        has gone to disk)."""
        self.started = True
        self.file.seek(0)
        on_disk = self.size > MEMORY
        while True:
            data = await asyncio.to_thread(self.file.read, PIECE) if on_disk else self.file.read(PIECE)
            if not data:
                return
            yield data

    def close(self) -> None:
        self.file.close()


async def buffer_body(request: Request, limit: int) -> SpooledBody:
    """Read the whole body of ``request``; BodyTooLarge past ``limit`` bytes."""
    spool = SpooledBody()
    try:
        async for chunk in request.body:
            if spool.size + len(chunk) > limit:
                raise BodyTooLarge()
            if spool.size + len(chunk) > MEMORY:
                await asyncio.to_thread(spool.write, chunk)
            else:
                spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return spool
