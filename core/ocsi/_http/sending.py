"""The writing half of an HTTP/1.1 connection: response heads and bodies onto the transport.

One :class:`ResponseWriter` per connection, owned by its adapter (:mod:`.protocol`), which
forwards the transport's ``pause_writing``/``resume_writing`` to it. Small bodies go out in one ``write`` with their head; streams chunk by chunk, waiting for the
transport to drain (``pause_writing``/``resume_writing``) so nothing is buffered whole; files
larger than :data:`SMALL_FILE` with ``os.sendfile`` on plain sockets (any event loop: uvloop has
no ``loop.sendfile``), through ``pread`` and writes on TLS.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import TYPE_CHECKING, Any

from .body import BytesBody, FileBody
from .errors import BodyAborted
from .exchange import aclose_body
from .request import ClientDisconnected, Request
from .response import Response, error_response
from .wire import CHUNKED, LENGTH, NONE, build_head, build_trailers

if TYPE_CHECKING:
    from .shared import Shared
    from .limits import Limits

log = logging.getLogger("ocsi.http")

#: Head and body go out in one ``write`` up to this body size.
SMALL_WRITE = 64 * 1024
#: Files up to this size are read with ``pread`` and written with their head in one ``write``:
#: for small files that is two system calls instead of four (write, dup, sendfile, close).
SMALL_FILE = 64 * 1024


class _Truncated(Exception):
    """The body did not match its announced length; the connection must be closed."""


def _set_none(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def accepts_trailers(req: Request) -> bool:
    """Whether the client said it takes trailer fields (``TE: trailers``)."""
    te = req.headers.get("te")
    return te is not None and "trailers" in te.lower()


class ResponseWriter:
    """Sends the responses of one connection. :attr:`sent` counts the body bytes of the current
    response handed to the transport, also when sending stops with :class:`ClientDisconnected`;
    :attr:`lost` is set by the adapter when the connection is gone."""

    __slots__ = ("m", "loop", "transport", "limits", "secure", "lost", "wrote", "sent",
                 "write_paused", "request", "wwaiter", "wdeadline")

    def __init__(self, m: Shared, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport,
                 limits: Limits, secure: bool) -> None:
        self.m = m
        self.loop = loop
        self.transport = transport
        self.limits = limits
        self.secure = secure
        self.lost = False
        self.wrote = False  # the head of the current response was written
        self.sent = 0
        self.write_paused = False
        #: The request answered now: whether it takes trailers (``TE: trailers``) is looked
        #: up only when an answer has some.
        self.request: Request | None = None
        self.wwaiter: asyncio.Future[None] | None = None  # waiting for the client to read
        self.wdeadline: float | None = None

    # -- the transport's flow control, forwarded by the adapter ----------------------------------
    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        w = self.wwaiter
        if w is not None and not w.done():
            w.set_result(None)

    def connection_lost(self) -> None:
        self.lost = True
        self.wdeadline = None
        w = self.wwaiter
        if w is not None and not w.done():
            w.set_exception(ClientDisconnected("client closed the connection"))

    def expire(self, now: float) -> None:
        """The client has not read for ``read_timeout`` seconds while an answer waits: drop it."""
        d = self.wdeadline
        if d is not None and now >= d:
            self.wdeadline = None
            w = self.wwaiter
            if w is not None and not w.done():
                w.set_exception(ClientDisconnected("client not reading: write timed out"))
            self.transport.abort()

    async def send(self, response: Response, is_head: bool, http10: bool,
                    keep: bool) -> tuple[int, bool]:
        """Write ``response``; return ``(status, keep-alive)``. ``self.sent`` counts the body
        bytes handed to the transport, also when this raises :class:`ClientDisconnected`."""
        m = self.m
        body = response.body
        try:
            head, framing, length, keep = build_head(
                response.status, response.reason, response.headers, body.length, is_head,
                http10, keep, m.server_line)
        except (ValueError, TypeError) as exc:
            log.error("cannot send the response (%r): %s", response, exc)
            await aclose_body(response)
            response = error_response(500)
            body = response.body
            head, framing, length, keep = build_head(500, None, response.headers, body.length,
                                                     is_head, http10, False, m.server_line)
        tr = self.transport
        if self.lost or tr.is_closing():
            raise ClientDisconnected("client closed the connection")
        if framing == NONE or length == 0:
            tr.write(head)
        elif isinstance(body, BytesBody):
            data = body.data
            if len(data) <= SMALL_WRITE:
                tr.write(head + data)
            else:
                tr.write(head)
                tr.write(data)
            self.sent = len(data)
        else:
            self.wrote = False
            try:
                if isinstance(body, FileBody) and framing == LENGTH:
                    await self._send_file(head, body, length)  # type: ignore[arg-type]  # LENGTH: length is an int
                else:
                    await self._send_stream(head, body, framing, length)
            except ClientDisconnected:
                raise
            except (ConnectionError, BrokenPipeError) as exc:
                raise ClientDisconnected(str(exc)) from exc
            except BodyAborted as exc:
                log.error("response aborted: %s", exc)
                if not self.lost:
                    tr.abort()
                return response.status, False
            except Exception as exc:
                if isinstance(exc, _Truncated):
                    log.error("response body of %r: %s", response, exc)
                else:
                    log.exception("error while sending the body of %r", response)
                if not self.wrote and not self.lost and not tr.is_closing():  # a clean 500
                    err = error_response(500)
                    head, _, _, _ = build_head(500, None, err.headers, err.body.length, is_head,
                                               http10, False, m.server_line)
                    data = b"" if is_head else err.body.data  # type: ignore[attr-defined]  # error bodies are BytesBody
                    tr.write(head + data)
                    self.sent = len(data)
                    return 500, False
                return response.status, False
        if self.write_paused:
            await self.drain_writes()
        return response.status, keep

    async def drain_writes(self) -> None:
        while self.write_paused:
            if self.lost:
                raise ClientDisconnected("client closed the connection")
            fut = self.wwaiter = self.loop.create_future()
            self.wdeadline = self.loop.time() + self.limits.read_timeout
            try:
                await fut
            finally:
                self.wwaiter = None
                self.wdeadline = None

    async def _send_stream(self, head: bytes, body: Any, framing: int,
                           length: int | None) -> None:
        tr = self.transport
        if head:
            tr.write(head)
        self.wrote = True
        sent = 0
        chunks = body.chunks()
        try:
            async for chunk in chunks:
                n = len(chunk)
                if not n:
                    continue
                if self.lost or tr.is_closing():
                    raise ClientDisconnected("client closed the connection")
                if framing == CHUNKED:
                    tr.write(b"%x\r\n%b\r\n" % (n, chunk))
                elif framing == LENGTH and sent + n > length:  # type: ignore[operator]  # LENGTH: length is an int
                    tr.write(chunk[: length - sent])  # type: ignore[operator]  # LENGTH: an int
                    self.sent += length - sent  # type: ignore[operator]  # LENGTH: an int
                    raise _Truncated(f"body longer than its Content-Length {length}")
                else:
                    tr.write(chunk)
                sent += n
                self.sent += n
                if self.write_paused:
                    await self.drain_writes()
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if framing == CHUNKED:
            trailers = getattr(body, "trailers", None)
            if trailers and self.request is not None and accepts_trailers(self.request):
                tr.write(build_trailers(trailers))
            else:
                tr.write(b"0\r\n\r\n")
        elif framing == LENGTH and sent != length:
            raise _Truncated(f"body shorter ({sent}) than its Content-Length {length}")

    async def _send_file(self, head: bytes, body: FileBody, length: int) -> None:
        if length <= SMALL_FILE:
            data = os.pread(body.fd, length, body.offset)
            if len(data) != length:
                raise OSError(f"file truncated: {len(data)} of {length} bytes")
            self.transport.write(head + data)
            self.wrote = True
            self.sent = length
            return
        if self.secure or not self.m.use_sendfile:
            await self._send_stream(head, body, LENGTH, length)
            return
        self.transport.write(head)
        self.wrote = True
        if not await self._sendfile(body.fd, body.offset, length):
            # sendfile impossible for this file: the ordinary way
            await self._send_stream(b"", body, LENGTH, length)

    async def _sendfile(self, fd: int, offset: int, count: int) -> bool:
        """``os.sendfile`` straight to the socket; False when the file cannot be sent that way.

        Works on any event loop (uvloop has no ``loop.sendfile``): the transport's buffer is
        flushed first, then a duplicate of the socket's descriptor is used for ``sendfile`` and
        for the writability wait, so the transport's own registration is never touched and a
        descriptor number reused after a disconnect can never be written to.
        """
        tr = self.transport
        if tr.get_write_buffer_size():
            await self._flush()
        sock = tr.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            raise ClientDisconnected("connection closed")
        sfd = os.dup(sock.fileno())
        loop = self.loop
        sent = 0
        try:
            while sent < count:
                if self.lost:
                    raise ClientDisconnected("client closed the connection")
                try:
                    n = os.sendfile(sfd, fd, offset + sent, count - sent)
                except (BlockingIOError, InterruptedError):
                    fut = self.wwaiter = loop.create_future()
                    self.wdeadline = loop.time() + self.limits.read_timeout
                    loop.add_writer(sfd, _set_none, fut)
                    try:
                        await fut
                    finally:
                        loop.remove_writer(sfd)
                        self.wwaiter = None
                        self.wdeadline = None
                    continue
                except OSError as exc:
                    if sent == 0 and exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP,
                                                   errno.ESPIPE, errno.EBADF):
                        return False
                    if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                        raise ClientDisconnected(str(exc)) from exc
                    raise
                if n == 0:
                    raise _Truncated(f"file truncated after {sent} of {count} bytes")
                sent += n
                self.sent += n
        finally:
            os.close(sfd)
        return True

    async def _flush(self) -> None:
        """Wait until the transport has handed everything it buffered to the kernel."""
        tr = self.transport
        low, high = tr.get_write_buffer_limits()
        tr.set_write_buffer_limits(0, 0)  # pause_writing now, resume_writing once empty
        try:
            while tr.get_write_buffer_size():
                if self.lost or tr.is_closing():
                    raise ClientDisconnected("client closed the connection")
                if self.write_paused:
                    await self.drain_writes()
                else:  # not expected: the transport did not pause us; poll
                    await asyncio.sleep(0.005)
        finally:
            if not self.lost and not tr.is_closing():
                tr.set_write_buffer_limits(high, low)
