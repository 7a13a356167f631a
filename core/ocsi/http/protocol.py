"""One HTTP/1.1 connection: an asyncio Protocol feeding h11, and one task answering requests.

Reading. ``data_received`` feeds the socket's bytes to h11 and pumps its events right there:
a complete head becomes a :class:`Request` handed to the connection's task, body data goes into
the request's :class:`RequestBody` (reading pauses while more than its ``high_water`` waits
unread), bytes of pipelined requests stay buffered in h11 until the task gets to them.

Answering. The task takes one request at a time, awaits the application (the pipeline) and
writes the response (:mod:`.sending`). Response heads are serialised by :mod:`.wire`, not by h11:
h11 is the request parser, driven by a :class:`~.reader.RequestReader` (one receive buffer
per connection, h11's readers called directly). That skips ``h11.Connection``'s state machine,
which costs as much as parsing the request, and lets HTTP/1.0 clients keep their connection
alive (h11 refuses keep-alive for 1.0).

Timeouts. No timer per request: the manager sweeps its connections periodically; each keeps at
most one read deadline (idle keep-alive, head, body, drain, linger) and one write deadline
(client not reading).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import h11

from .access import AccessRecord
from .fasthead import FastHead
from .incoming import HeadError, error_status, head_size, parse_head, peer_address
from .limits import Limits
from .reader import RequestReader
from .request import BadRequestBody, BodyTooLarge, ClientDisconnected, Request, RequestBody, RequestTimeout
from .response import Response, body_error_status, error_response
from .sending import ResponseWriter, aclose_body, close_plain_body
from .tunnel import Tunnel, TunnelBody
from .wire import build_head, build_switch_head

if TYPE_CHECKING:
    from .connection import ConnectionManager

__all__ = ["HTTPProtocol", "BadRequestBody", "RequestTimeout"]

log = logging.getLogger("ocsi.http")

#: After a response, at most this much of an unread request body is read and discarded to keep
#: the connection; beyond it (or after ``DRAIN_TIME`` seconds) the connection is closed.
DRAIN_MAX = 1024 * 1024
DRAIN_TIME = 5.0
#: How long an idle connection stays open once a shutdown has begun (see ``shutdown``).
SHUTDOWN_GRACE = 1.0
#: When closing with request bytes possibly in flight, wait this long for the client's FIN
#: (discarding what it sends) so that the kernel does not answer with RST and lose the response.
LINGER_TIME = 2.0
#: Bytes of pipelined requests buffered while a response is being produced before reading pauses.
PIPELINE_MAX = 64 * 1024

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Where the reading side is.
_HEAD = 0  # waiting for (or receiving) a request head
_BODY = 1  # receiving the request body
_REST = 2  # request complete; bytes of the next request(s) are buffered
_STOP = 3  # reading is over for this connection (error, refused body): discard input
_LINGER = 4  # response sent, half-closed, discarding input until the client's FIN
_TUNNEL = 5  # switched protocols (101): input goes to the tunnel
# Read deadline kinds.
_D_IDLE, _D_HEAD, _D_BODY, _D_DRAIN, _D_LINGER = 1, 2, 3, 4, 5

_QUIET = object()  # "close without answering" in place of a request
_HANDED = object()  # "the connection is HTTP/2 now": the task ends, the transport stays open
#: The start of HTTP/2's connection preface (RFC 9113 §3.4), what an h2c client sends first.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _set_nodelay(transport: Any) -> None:
    """Disable Nagle's algorithm. asyncio only does it for sockets whose ``proto`` is
    ``IPPROTO_TCP``, which excludes those accepted from a listening socket made with
    ``socket.socket()`` (proto 0); a head and a body written separately then wait for the
    client's delayed ACK: 40 ms per response. uvloop sets it on every TCP transport itself,
    and asking it for the socket object costs a few microseconds per connection: skipped."""
    if type(transport).__module__ == "uvloop.loop":
        return
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class HTTPProtocol(ResponseWriter, asyncio.Protocol):
    """One client connection. Created by :meth:`ConnectionManager.protocol_factory`."""

    __slots__ = (
        "_m", "_port", "_secure", "_loop", "_transport", "_task", "_h11", "_limits", "_client",
        "_phase", "_head", "_waiter", "_wwaiter", "_deadline", "_dkind", "_wdeadline",
        "_seen", "_first", "_body", "_body_status", "_expect", "_continue_sent", "_stalled",
        "_discard", "_keep", "_wrote", "_sent", "_read_paused", "_write_paused", "_lost", "_eof",
        "_t0", "_m0", "_tunnel", "_trailers_ok", "_gone", "_h2c",
    )

    def __init__(self, manager: ConnectionManager, port: int, secure: bool,
                 h2c: bool = False) -> None:
        self._m = manager
        self._h2c = h2c  # cleartext HTTP/2 with prior knowledge is accepted on this port
        self._port = port
        self._secure = secure
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._transport: Any = None
        self._task: asyncio.Task[None] | None = None
        self._h11: RequestReader = None  # type: ignore[assignment]
        self._limits = manager.limits
        self._client = "-"
        self._phase = _HEAD
        self._head: Any = None  # Request | HeadError | _QUIET, waiting for the task
        self._waiter: asyncio.Future[None] | None = None  # the task waiting on the read side
        self._wwaiter: asyncio.Future[None] | None = None  # the task waiting to write
        self._deadline: float | None = None
        self._dkind = 0
        self._wdeadline: float | None = None
        self._seen = 0  # bytes of the current head (or of pipelined data while answering)
        self._first = b""  # first bytes of the current head, to tell 414/505 from 400
        self._body: RequestBody | None = None
        self._body_status = 0  # status owed because of the body (413, 400, 408), 0 if none
        self._expect = False
        self._continue_sent = False
        self._stalled = False  # reading paused because the body buffer is full
        self._discard = -1  # >= 0 while draining an unread body: bytes still allowed
        self._keep = False  # the request allows keep-alive
        self._wrote = False  # the head of the current response was written
        self._sent = 0  # body bytes of the current response handed to the transport
        self._read_paused = False
        self._write_paused = False
        self._lost = False
        self._eof = False
        self._gone: asyncio.Future[None] | None = None  # made when a step waits for it
        self._t0 = 0.0
        self._m0 = 0.0
        self._tunnel: Tunnel | None = None
        self._trailers_ok = False

    # -- asyncio callbacks -------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._loop = loop = asyncio.get_running_loop()
        self._client = peer_address(transport)
        _set_nodelay(transport)
        m = self._m
        limits = self._limits = m.limits
        if not m.has_room():
            self._refuse()
            return
        if self._secure and _alpn(transport) == "h2":
            self._to_http2(transport)
            return
        self._h11 = RequestReader(limits.max_header_bytes, limits.fast_parser)
        m.register(self, loop)
        self._deadline = loop.time() + limits.keepalive_timeout
        if m.closing:  # accepted by the loop just before the listener closed: still answered
            self._deadline = loop.time() + min(SHUTDOWN_GRACE, limits.keepalive_timeout)
        self._dkind = _D_IDLE
        self._task = loop.create_task(self._run())

    def _to_http2(self, transport: Any, received: bytes = b"") -> None:
        """The handshake chose HTTP/2, or the client opened with HTTP/2's preface on an h2c
        port: the connection is an :class:`H2Protocol` from now on."""
        from .h2conn import H2Protocol

        h2p = H2Protocol(self._m, self._port, transport, self._client, self._secure)
        transport.set_protocol(h2p)
        self._m.register(h2p, self._loop)
        h2p.start(received)

    def _handed_over(self, data: bytes) -> None:
        """An h2c client's preface as the first bytes of a connection (only there: after an
        HTTP/1.1 exchange, :meth:`_next_cycle` turns h2c off and it is an ordinary bad
        request). The preface must come whole in the first read, as clients send it."""
        self._head = _HANDED
        self._phase = _STOP
        self._deadline = None
        self._wake()
        self._to_http2(self._transport, data)

    def data_received(self, data: bytes) -> None:
        try:
            ph = self._phase
            if ph == _HEAD:
                if not self._seen:
                    if self._h2c and data.startswith(_H2_PREFACE):
                        self._handed_over(data)
                        return
                    self._first = data
                    self._deadline = self._loop.time() + self._limits.header_timeout
                    self._dkind = _D_HEAD
                elif (len(self._first) <= self._limits.max_request_line
                      and b"\n" not in self._first):
                    self._first += data
                self._seen += len(data)
                self._h11.receive_data(data)
                if self._waiter is not None:
                    self._pump_head()
            elif ph == _BODY:
                self._h11.receive_data(data)
                if self._deadline is not None and self._dkind == _D_BODY:
                    self._deadline = self._loop.time() + self._limits.read_timeout
                self._pump_body()
            elif ph == _REST:
                self._h11.receive_data(data)
                self._seen += len(data)
                if self._seen > PIPELINE_MAX:
                    self._pause()
            elif ph == _TUNNEL:
                self._tunnel.feed(data)  # type: ignore[union-attr]
            # _STOP, _LINGER: discard
        except Exception:
            self._crash("reading a request")

    def eof_received(self) -> bool | None:
        try:
            self._eof = True
            self._signal_gone()
            ph = self._phase
            if ph == _HEAD:
                self._h11.receive_data(b"")
                if self._waiter is not None:
                    self._pump_head()
            elif ph == _BODY:
                self._h11.receive_data(b"")
                self._pump_body()
            elif ph == _REST:
                self._h11.receive_data(b"")
            elif ph == _TUNNEL:
                self._tunnel.feed_eof()  # type: ignore[union-attr]
                return True  # the tunnel decides when to close
            elif ph == _LINGER:
                self._wake()
                return None  # asyncio closes the transport
            # Keep our half open to finish the response (TLS cannot half-close: it closes anyway).
            return None if self._secure else True
        except Exception:
            self._crash("reading a request")
            return None

    def _crash(self, what: str) -> None:
        """A bug in a protocol callback: log it, drop the connection, keep the server."""
        log.exception("error %s from %s", what, self._client)
        self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._signal_gone()
        self._deadline = self._wdeadline = None
        body = self._body
        if body is not None and self._phase == _BODY:
            body.fail(ClientDisconnected("client closed the connection"))
        if self._head is None:
            self._head = _QUIET
        if self._tunnel is not None:
            self._tunnel.feed_eof()
        self._wake()
        w = self._wwaiter
        if w is not None and not w.done():
            w.set_exception(ClientDisconnected("client closed the connection"))

    # -- ClientLink: whether the client has gone -------------------------------------------------
    @property
    def client_gone(self) -> bool:
        return self._lost or self._eof

    async def wait_client_gone(self) -> None:
        if self._lost or self._eof:
            return
        if self._gone is None:
            self._gone = self._loop.create_future()
        await asyncio.shield(self._gone)  # one waiter's cancellation leaves it for the others

    def _signal_gone(self) -> None:
        g = self._gone
        if g is not None and not g.done():
            g.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        w = self._wwaiter
        if w is not None and not w.done():
            w.set_result(None)

    @property
    def awaiting_request(self) -> bool:
        """Idle between requests: waiting for a head with nothing of it received yet."""
        return (self._phase == _HEAD and self._head is None and self._waiter is not None
                and not self._seen)

    # -- reading -----------------------------------------------------------------------------------
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _pause(self) -> None:
        if not self._read_paused and not self._lost:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume(self) -> None:
        if self._read_paused:
            self._read_paused = False
            if not self._lost:
                self._transport.resume_reading()

    def _pump_head(self) -> None:
        try:
            ev = self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            self._head = _head_error(exc, self._first, self._limits)
            self._phase = _STOP
            self._deadline = None
            self._wake()
            return
        if type(ev) is FastHead or type(ev) is h11.Request:
            self._start_request(ev)
        elif ev is not h11.NEED_DATA:  # ConnectionClosed before any byte of a head
            self._head = _QUIET
            self._phase = _STOP
            self._wake()

    def _start_request(self, ev: h11.Request | FastHead) -> None:
        self._deadline = None
        self._t0 = time.time()
        self._m0 = self._loop.time()
        limits = self._limits
        try:
            # h11 bounds only heads that arrive in pieces; one that came whole is measured here
            if self._seen > limits.max_header_bytes and head_size(ev) > limits.max_header_bytes:
                raise HeadError(431, "request head too large")
            req, length, expect, keep = parse_head(ev, limits, self._port, self._secure,
                                                   self._client)
        except Exception as exc:
            if not isinstance(exc, HeadError):
                log.exception("error parsing a request head from %s", self._client)
                exc = HeadError(400, "unparsable request head")
            exc.method, exc.target, exc.version = _event_line(ev)  # type: ignore[attr-defined]
            self._head = exc
            self._phase = _STOP
            self._wake()
            return
        self._first = b""
        self._keep = keep
        self._expect = expect
        self._continue_sent = False
        self._body_status = 0
        self._head = req
        req.link = self
        if length == 0:
            self._phase = _REST
            self._seen = 0
            self._body = None
        elif length is not None and limits.max_body is not None and length > limits.max_body:
            self._body_status = 413
            self._phase = _STOP
            self._body = None
        else:
            body = req.body = self._body = RequestBody(length, limits.max_body, self._on_body_read)
            self._h11.start_body(length)
            self._phase = _BODY
            self._stalled = False
            self._discard = -1
            if not expect:
                self._deadline = self._m0 + limits.read_timeout
                self._dkind = _D_BODY
            self._wake()
            if body is not None:
                self._pump_body()
            return
        self._wake()

    def _pump_body(self) -> None:
        body = self._body
        assert body is not None
        conn = self._h11
        while True:
            discard = self._discard
            if discard < 0 and not body.wants_more():
                self._stalled = True
                self._deadline = None
                self._pause()
                return
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self._eof or self._lost:
                    self._body_failed(ClientDisconnected("client closed the connection"), 0)
                else:
                    self._body_failed(BadRequestBody(f"malformed request body: {exc}"), 400)
                return
            t = type(ev)
            if t is h11.Data:
                if discard >= 0:
                    self._discard = discard - len(ev.data)
                    if self._discard < 0:
                        self._body_failed(None, 0)
                        return
                    continue
                body.feed(bytes(ev.data))
                if body.limit is not None and body.received > body.limit:
                    self._body_failed(None, 413)  # feed() already failed the body: BodyTooLarge
                    return
            elif t is h11.EndOfMessage:
                if discard < 0:
                    body.end()
                self._phase = _REST
                self._seen = 0
                self._deadline = None
                self._wake()
                return
            else:  # NEED_DATA
                return

    def _body_failed(self, exc: BaseException | None, status: int) -> None:
        if exc is not None and self._body is not None:
            self._body.fail(exc)
        if status and not self._body_status:
            self._body_status = status
        self._phase = _STOP
        self._deadline = None
        self._pause()
        self._wake()

    def _on_body_read(self) -> None:
        """Called by the request body on each read: 100-continue, resume after back-pressure."""
        if self._expect and not self._continue_sent:
            self._continue_sent = True
            if self._phase == _BODY and not self._lost and not self._transport.is_closing():
                self._transport.write(_CONTINUE)
                self._deadline = self._loop.time() + self._limits.read_timeout
                self._dkind = _D_BODY
        if self._stalled and self._phase == _BODY and self._body is not None \
                and self._body.wants_more():
            self._stalled = False
            self._loop.call_soon(self._unstall)

    def _unstall(self) -> None:
        if self._phase == _BODY and not self._lost:
            if not self._expect or self._continue_sent:
                self._deadline = self._loop.time() + self._limits.read_timeout
                self._dkind = _D_BODY
            self._resume()
            self._pump_body()

    # -- deadlines (called by the manager's sweep) -----------------------------------------------
    def check_deadlines(self, now: float) -> None:
        """Called by the manager's sweep: act on a read or write deadline that has passed."""
        d = self._deadline
        if d is not None and now >= d:
            self._deadline = None
            kind = self._dkind
            if kind == _D_IDLE or kind == _D_HEAD:
                if self._phase == _HEAD and self._head is None:
                    if kind == _D_IDLE or not self._seen:
                        self._head = _QUIET
                    else:
                        self._head = HeadError(408, "request head not received in time")
                    self._phase = _STOP
                    self._wake()
            elif kind == _D_BODY:
                if self._phase == _BODY:
                    self._body_failed(RequestTimeout("request body timed out"), 408)
            elif kind == _D_DRAIN:
                if self._phase == _BODY:
                    self._body_failed(None, 0)
            else:  # _D_LINGER
                self._wake()
        d = self._wdeadline
        if d is not None and now >= d:
            self._wdeadline = None
            w = self._wwaiter
            if w is not None and not w.done():
                w.set_exception(ClientDisconnected("client not reading: write timed out"))
            self._transport.abort()

    def shutdown(self) -> None:
        """Server shutdown: the current response ends the connection; an idle one closes after
        :data:`SHUTDOWN_GRACE`, in case a request is already on its way (a connection the
        kernel accepted just before the listener closed, or a client reusing a keep-alive
        connection), and is then answered with ``Connection: close``. Closing it at once
        would reset a request the client had every reason to send."""
        if self._phase == _HEAD and self._head is None:
            if not self._seen and self._dkind == _D_IDLE and not self._eof:
                grace = self._loop.time() + SHUTDOWN_GRACE
                self._deadline = grace if self._deadline is None else min(self._deadline, grace)
                return
            self._head = _QUIET
            self._phase = _STOP
            self._wake()
        elif self._discard >= 0:
            self._body_failed(None, 0)  # stop draining

    def reloaded(self) -> None:
        """The configuration or the certificates were reloaded: an HTTP/1.1 connection carries
        on, its next request answered by the new configuration."""

    def abort(self) -> None:
        """Drop the connection now (and its task)."""
        if self._transport is not None:
            self._transport.abort()
        if self._task is not None:
            self._task.cancel()

    # -- the connection's task ---------------------------------------------------------------------
    async def _run(self) -> None:
        m = self._m
        linger = False
        try:
            while True:
                item = self._head
                if item is None:
                    if self._phase == _HEAD and (self._seen or self._eof):
                        self._pump_head()
                    item = self._head
                    if item is None:
                        if m.closing and self._deadline is None:  # between two requests
                            break
                        if not self._seen and self._deadline is None:
                            self._deadline = self._loop.time() + self._limits.keepalive_timeout
                            self._dkind = _D_IDLE
                        fut = self._waiter = self._loop.create_future()
                        try:
                            await fut
                        finally:
                            self._waiter = None
                        item = self._head
                self._head = None
                if item is _HANDED:
                    return
                if item is _QUIET or item is None:
                    break
                if type(item) is not Request:
                    await self._answer_error(item)
                    linger = True
                    break
                if not await self._exchange(item):
                    linger = self._phase != _REST
                    break
                self._next_cycle()
            await self._close(linger)
        except asyncio.CancelledError:
            self._transport.abort()
        except Exception:
            log.exception("error on the connection from %s", self._client)
            self._transport.abort()
        finally:
            m.unregister(self)

    def _next_cycle(self) -> None:
        self._h2c = False
        limits = self._limits = self._m.limits
        reader = self._h11
        reader.start_next_cycle(limits.max_header_bytes)
        self._phase = _HEAD
        self._body = None
        self._seen = 0
        self._t0 = 0.0
        pending = reader.buffered
        if pending:  # pipelined bytes: the next head has started
            self._seen = pending
            self._first = reader.peek(max(limits.max_request_line, 8192) + 2)
            self._deadline = self._loop.time() + limits.header_timeout
            self._dkind = _D_HEAD
        self._resume()

    async def _exchange(self, req: Request) -> bool:
        """Answer one request; return whether the connection can take the next one."""
        m = self._m
        m.in_flight += 1
        response: Response | None = None
        status = 0
        self._sent = 0
        keep = False
        try:
            if self._phase == _STOP and self._body_status in (400, 413) and (
                    self._body is None or self._body_status == 400):
                # refused before the application: 413 by Content-Length, or a body already
                # known to be malformed (a request-smuggling shape, nothing to hand over)
                response = error_response(self._body_status)
            else:
                try:
                    response = await m.app(req)
                    if not isinstance(response, Response):
                        raise TypeError(f"the application returned {response!r}, not a Response")
                except (ClientDisconnected, BodyTooLarge) as exc:  # the client's doing
                    log.info("request body from %s not received: %r", self._client, exc)
                    response = error_response(self._body_status or body_error_status(exc))
                except Exception:
                    log.exception("error answering %s %s", req.method, req.target)
                    if response is not None and isinstance(response, Response):
                        await aclose_body(response)
                    response = error_response(500)
                if self._body_status and response.status >= 500:
                    await aclose_body(response)
                    response = error_response(self._body_status)
            if response.status == 101 or isinstance(response.body, TunnelBody):
                status = await self._switch(req, response)
                return False
            keep = self._keep and not m.closing and self._can_keep()
            self._trailers_ok = _accepts_trailers(req)
            status, keep = await self._send(response, req.method == "HEAD",
                                            req.version == "1.0", keep)
            if keep and self._phase != _REST:
                keep = await self._drain()
        except ClientDisconnected:
            keep = False
        finally:
            if response is not None and not close_plain_body(response):
                await aclose_body(response)
            m.in_flight -= 1
            if m.access_log is not None and response is not None:
                self._record(req, status or response.status, self._sent)
        return keep and not m.closing and not self._lost

    async def _switch(self, req: Request, response: Response) -> int:
        """``101 Switching Protocols``: the head, then the connection is the tunnel's until its
        ``run`` returns. Only for a request that asked to upgrade and sent no body."""
        body = response.body
        asked = any(t.strip().lower() == "upgrade"
                    for v in req.headers.get_all("connection") for t in v.split(","))
        if (response.status != 101 or not isinstance(body, TunnelBody) or not asked
                or self._phase != _REST or req.version != "1.1"):
            log.error("cannot switch protocols for %s %s: %s", req.method, req.target,
                      "the request did not ask to upgrade" if not asked else
                      "a 101 answer needs a TunnelBody, and a TunnelBody a 101")
            await aclose_body(response)
            status, _ = await self._send(error_response(500), req.method == "HEAD",
                                         req.version == "1.0", False)
            return status
        try:
            head = build_switch_head(response.headers.items(), self._m.server_line)
        except ValueError as exc:
            log.error("cannot send the 101 answer: %s", exc)
            status, _ = await self._send(error_response(500), False, False, False)
            return status
        tunnel = self._tunnel = Tunnel(self._transport, self._drain_writes)
        self._transport.write(head)
        self._phase = _TUNNEL
        self._deadline = None
        rest = self._h11.take_buffered()  # what the client sent after its request, if anything
        if rest:
            tunnel.feed(rest)
        if self._eof:
            tunnel.feed_eof()
        self._resume()
        try:
            await body.run(tunnel)
        except ClientDisconnected:
            pass
        except Exception:
            log.exception("the connection switched to another protocol failed")
        finally:
            self._sent = tunnel.sent
            if not self._transport.is_closing():
                self._transport.close()
        return 101

    def _can_keep(self) -> bool:
        """Whether the rest of an unread request body can be drained after the response."""
        ph = self._phase
        if ph == _REST:
            return True
        if ph != _BODY or (self._expect and not self._continue_sent):
            return False
        body = self._body
        return body is not None and (body.length is None
                                     or body.length - body.received <= DRAIN_MAX)

    async def _drain(self) -> bool:
        """Read and discard what is left of the request body (bounded); True if it all came."""
        if self._phase != _BODY:
            return self._phase == _REST
        self._discard = DRAIN_MAX
        self._stalled = False
        self._deadline = self._loop.time() + min(DRAIN_TIME, self._limits.read_timeout)
        self._dkind = _D_DRAIN
        self._resume()
        self._pump_body()
        if self._phase == _BODY:
            fut = self._waiter = self._loop.create_future()
            try:
                await fut
            finally:
                self._waiter = None
        self._discard = -1
        return self._phase == _REST

    async def _close(self, linger: bool) -> None:
        tr = self._transport
        if self._lost or tr.is_closing():
            return
        if linger and not self._eof and tr.can_write_eof():
            self._phase = _LINGER
            self._resume()
            tr.write_eof()
            self._deadline = self._loop.time() + LINGER_TIME
            self._dkind = _D_LINGER
            if not self._lost:
                fut = self._waiter = self._loop.create_future()
                try:
                    await fut
                finally:
                    self._waiter = None
        if self._lost or tr.is_closing():
            return
        if tr.get_write_buffer_size():
            # close() waits for the buffer to flush: bound that wait.
            self._loop.call_later(self._limits.read_timeout, tr.abort)
        tr.close()

    # -- connection-level answers ----------------------------------------------------------------
    async def _answer_error(self, err: HeadError) -> None:
        m = self._m
        m.in_flight += 1
        status = err.status
        response = error_response(status)
        sent = 0
        try:
            if not self._lost and not self._transport.is_closing():
                head, _, _, _ = build_head(status, None, response.headers, response.body.length,
                                           False, False, False, m.server_line)
                data = response.body.data  # type: ignore[attr-defined]
                self._transport.write(head + data)
                sent = len(data)
        finally:
            m.in_flight -= 1
            if m.access_log is not None:
                if not self._t0:
                    self._t0 = time.time()
                    self._m0 = self._loop.time()
                method = getattr(err, "method", None)
                target = getattr(err, "target", None)
                version = getattr(err, "version", None)
                self._emit(AccessRecord(
                    self._t0, self._client, method, target, version, None, None, None, None,
                    status, sent, self._loop.time() - self._m0, None, self._port, self._secure))

    def _refuse(self) -> None:
        """Over ``max_connections`` (or shutting down): 503, then close."""
        self._phase = _LINGER
        tr = self._transport
        m = self._m
        response = error_response(503)
        head, _, _, _ = build_head(503, None, response.headers, response.body.length, False,
                                   False, False, m.server_line)
        data = response.body.data  # type: ignore[attr-defined]
        tr.write(head + data)
        if m.access_log is not None:
            self._emit(AccessRecord(time.time(), self._client, None, None, None, None, None,
                                    None, None, 503, len(data), 0.0, None, self._port,
                                    self._secure))
        if tr.can_write_eof():
            tr.write_eof()
            self._loop.call_later(LINGER_TIME / 2, tr.close)
        else:
            tr.close()

    def _record(self, req: Request, status: int, sent: int) -> None:
        self._emit(AccessRecord.answered(req, self._t0, self._client, status, sent,
                                         self._loop.time() - self._m0, self._port, self._secure))

    def _emit(self, record: AccessRecord) -> None:
        cb = self._m.access_log
        if cb is None:
            return
        try:
            cb(record)
        except Exception:
            log.exception("access log callback failed")


def _head_error(exc: h11.RemoteProtocolError, first: bytes, limits: Limits) -> HeadError:
    err = HeadError(error_status(exc, first, limits), str(exc))
    line = first.split(b"\n", 1)[0].rstrip(b"\r")[:8192]
    parts = line.split(b" ")
    if len(parts) == 3:  # for the access log only
        method, target, version = (p.decode("latin-1") for p in parts)
        err.method, err.target = method, target  # type: ignore[attr-defined]
        err.version = version[5:] if version.startswith("HTTP/") else None  # type: ignore
    return err


def _alpn(transport: Any) -> str | None:
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object.selected_alpn_protocol() if ssl_object is not None else None


def _accepts_trailers(req: Request) -> bool:
    te = req.headers.get("te")
    return te is not None and "trailers" in te.lower()


def _event_line(ev: h11.Request | FastHead) -> tuple[str, str, str]:
    return (ev.method.decode("latin-1"), ev.target.decode("latin-1"),
            ev.http_version.decode("latin-1"))
