"""The writing half of a connection: response heads and bodies onto the transport.

Mixed into :class:`~ocsi.http.protocol.HTTPProtocol`, whose slots hold the state used here.
Small bodies go out in one ``write`` with their head; streams chunk by chunk, waiting for the
transport to drain (``pause_writing``/``resume_writing``) so nothing is buffered whole; files
larger than :data:`SMALL_FILE` with ``os.sendfile`` on plain sockets (any event loop: uvloop has
no ``loop.sendfile``), through ``pread`` and writes on TLS.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import TYPE_CHECKING, Any

from .body import BytesBody, FileBody
from .errors import BodyAborted
from .request import ClientDisconnected
from .response import Response, error_response
from .wire import CHUNKED, LENGTH, NONE, build_head, build_trailers

if TYPE_CHECKING:
    from .connection import ConnectionManager
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


async def aclose_body(response: Response) -> None:
    """Close a response's body, logging (never raising) what goes wrong."""
    try:
        await response.body.aclose()
    except Exception:
        log.exception("error closing the body of %r", response)


def close_plain_body(response: Response) -> bool:
    """Close the body if it is plain bytes or a file, without a coroutine; False otherwise.

    Every response is closed after it is sent; for the common bodies that needs no await, and
    skipping two coroutines per request is measurable. Exact types only: a subclass may have
    its own ``aclose``.
    """
    body = response.body
    t = type(body)
    if t is BytesBody:
        return True
    if t is FileBody:
        body.close()  # type: ignore[attr-defined]
        return True
    return False


class ResponseWriter:
    """Mixin: sends one response. ``self._sent`` counts the body bytes handed to the transport,
    also when sending stops with :class:`ClientDisconnected`."""

    if not TYPE_CHECKING:  # the attributes live in the slots of the class it is mixed into
        __slots__ = ()

    if TYPE_CHECKING:
        _m: ConnectionManager
        _loop: asyncio.AbstractEventLoop
        _transport: Any
        _limits: Limits
        _secure: bool
        _lost: bool
        _wrote: bool
        _sent: int
        _write_paused: bool
        _trailers_ok: bool
        _wwaiter: asyncio.Future[None] | None
        _wdeadline: float | None

    async def _send(self, response: Response, is_head: bool, http10: bool,
                    keep: bool) -> tuple[int, bool]:
        """Write ``response``; return ``(status, keep-alive)``. ``self._sent`` counts the body
        bytes handed to the transport, also when this raises :class:`ClientDisconnected`."""
        m = self._m
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
        tr = self._transport
        if self._lost or tr.is_closing():
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
            self._sent = len(data)
        else:
            self._wrote = False
            try:
                if isinstance(body, FileBody) and framing == LENGTH:
                    await self._send_file(head, body, length)  # type: ignore[arg-type]
                else:
                    await self._send_stream(head, body, framing, length)
            except ClientDisconnected:
                raise
            except (ConnectionError, BrokenPipeError) as exc:
                raise ClientDisconnected(str(exc)) from exc
            except BodyAborted as exc:
                log.error("response aborted: %s", exc)
                if not self._lost:
                    tr.abort()
                return response.status, False
            except Exception as exc:
                if isinstance(exc, _Truncated):
                    log.error("response body of %r: %s", response, exc)
                else:
                    log.exception("error while sending the body of %r", response)
                if not self._wrote and not self._lost and not tr.is_closing():  # a clean 500
                    err = error_response(500)
                    head, _, _, _ = build_head(500, None, err.headers, err.body.length, is_head,
                                               http10, False, m.server_line)
                    data = b"" if is_head else err.body.data  # type: ignore[attr-defined]
                    tr.write(head + data)
                    self._sent = len(data)
                    return 500, False
                return response.status, False
        if self._write_paused:
            await self._drain_writes()
        return response.status, keep

    async def _drain_writes(self) -> None:
        while self._write_paused:
            if self._lost:
                raise ClientDisconnected("client closed the connection")
            fut = self._wwaiter = self._loop.create_future()
            self._wdeadline = self._loop.time() + self._limits.read_timeout
            try:
                await fut
            finally:
                self._wwaiter = None
                self._wdeadline = None

    async def _send_stream(self, head: bytes, body: Any, framing: int,
                           length: int | None) -> None:
        tr = self._transport
        if head:
            tr.write(head)
        self._wrote = True
        sent = 0
        chunks = body.chunks()
        try:
            async for chunk in chunks:
                n = len(chunk)
                if not n:
                    continue
                if self._lost or tr.is_closing():
                    raise ClientDisconnected("client closed the connection")
                if framing == CHUNKED:
                    tr.write(b"%x\r\n%b\r\n" % (n, chunk))
                elif framing == LENGTH and sent + n > length:  # type: ignore[operator]
                    tr.write(chunk[: length - sent])  # type: ignore[operator]
                    self._sent += length - sent  # type: ignore[operator]
                    raise _Truncated(f"body longer than its Content-Length {length}")
                else:
                    tr.write(chunk)
                sent += n
                self._sent += n
                if self._write_paused:
                    await self._drain_writes()
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if framing == CHUNKED:
            trailers = getattr(body, "trailers", None)
            if trailers and self._trailers_ok:
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
            self._transport.write(head + data)
            self._wrote = True
            self._sent = length
            return
        if self._secure or not self._m.use_sendfile:
            await self._send_stream(head, body, LENGTH, length)
            return
        self._transport.write(head)
        self._wrote = True
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
        tr = self._transport
        if tr.get_write_buffer_size():
            await self._flush()
        sock = tr.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            raise ClientDisconnected("connection closed")
        sfd = os.dup(sock.fileno())
        loop = self._loop
        sent = 0
        try:
            while sent < count:
                if self._lost:
                    raise ClientDisconnected("client closed the connection")
                try:
                    n = os.sendfile(sfd, fd, offset + sent, count - sent)
                except (BlockingIOError, InterruptedError):
                    fut = self._wwaiter = loop.create_future()
                    self._wdeadline = loop.time() + self._limits.read_timeout
                    loop.add_writer(sfd, _set_none, fut)
                    try:
                        await fut
                    finally:
                        loop.remove_writer(sfd)
                        self._wwaiter = None
                        self._wdeadline = None
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
                self._sent += n
        finally:
            os.close(sfd)
        return True

    async def _flush(self) -> None:
        """Wait until the transport has handed everything it buffered to the kernel."""
        tr = self._transport
        low, high = tr.get_write_buffer_limits()
        tr.set_write_buffer_limits(0, 0)  # pause_writing now, resume_writing once empty
        try:
            while tr.get_write_buffer_size():
                if self._lost or tr.is_closing():
                    raise ClientDisconnected("client closed the connection")
                if self._write_paused:
                    await self._drain_writes()
                else:  # not expected: the transport did not pause us; poll
                    await asyncio.sleep(0.005)
        finally:
            if not self._lost and not tr.is_closing():
                tr.set_write_buffer_limits(high, low)
