"""One HTTP/1.1 connection on asyncio: the IO around :class:`~.h1state.H1State`.

The connection's state (phases, framing, keep-alive, deadlines) is :class:`~.h1state.H1State`,
which does no IO; :class:`HTTPProtocol` is the asyncio Protocol that feeds it the socket's
bytes and carries out what it asks (``todo``: wake the task, pause or resume reading, send
``100 Continue``, hand over to HTTP/2). Answers are written by the connection's
:class:`~.sending.ResponseWriter`; each request is answered by the shared exchange
(:func:`~.exchange.answer`: the application, its exceptions, in-flight count, access record).

Reading. ``data_received`` feeds the state right there: a complete head becomes a
:class:`Request` for the connection's task, body data goes into the request's
:class:`RequestBody` (reading pauses while more than its ``high_water`` waits unread), bytes of
pipelined requests stay buffered until the task gets to them. Response heads are serialised by
:mod:`.wire`, not by h11 (:mod:`.reader` explains why h11's connection object is not used).

Answering. One task per connection takes one request at a time; it starts when the state first
wakes it (a head, a deadline, the end), so a connection that sends nothing costs no task.

Timeouts. No timer per request: the manager sweeps its connections periodically; each keeps at
most one read deadline (in its state) and one write deadline (in its writer).

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

from . import h1state as st_
from .access import AccessRecord
from .exchange import aclose_body, answer, emit
from .h1state import H1State
from .incoming import HeadError
from .request import BadRequestBody, ClientDisconnected, Request, RequestTimeout
from .response import Response, error_response
from .sending import ResponseWriter
from .transportinfo import alpn, peer_address, set_nodelay
from .tunnel import Tunnel, TunnelBody
from .wire import build_head, build_switch_head

if TYPE_CHECKING:
    from .shared import Shared

__all__ = ["HTTPProtocol", "BadRequestBody", "RequestTimeout"]

log = logging.getLogger("ocsi.http")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEAD, _BODY, _REST, _STOP, _LINGER, _TUNNEL = (st_.HEAD, st_.BODY, st_.REST, st_.STOP,
                                                st_.LINGER, st_.TUNNEL)
_QUIET, _HANDED, _WAKE = st_.QUIET, st_.HANDED, st_.WAKE


class HTTPProtocol(asyncio.Protocol):
    """One client connection. Created by :meth:`ConnectionManager.protocol_factory`; it is
    the :class:`~.exchange.Link` of its requests and their :class:`~.request.ClientLink`."""

    __slots__ = ("_m", "_port", "_secure", "_h2c", "_loop", "_transport", "_task", "_client",
                 "_st", "_w", "_waiter", "_read_paused", "_gone", "_tunnel", "_keep")

    def __init__(self, manager: Shared, port: int, secure: bool,
                 h2c: bool = False) -> None:
        self._m = manager
        self._port = port
        self._secure = secure
        self._h2c = h2c  # cleartext HTTP/2 with prior knowledge is accepted on this port
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by connection_made
        self._transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made, before any other callback
        self._task: asyncio.Task[None] | None = None
        self._client = "-"
        self._st: H1State = None  # type: ignore[assignment]  # set by connection_made
        self._w: ResponseWriter = None  # type: ignore[assignment]  # set by connection_made
        self._waiter: asyncio.Future[None] | None = None  # the task waiting on the read side
        self._read_paused = False
        self._gone: asyncio.Future[None] | None = None  # made when a step waits for it
        self._tunnel: Tunnel | None = None
        self._keep = False  # the exchange just delivered leaves the connection usable

    # -- asyncio callbacks -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream server's (uvloop's are no subclass)
        self._transport = transport
        self._loop = loop = asyncio.get_running_loop()
        self._client = peer_address(transport)
        set_nodelay(transport)
        m = self._m
        limits = m.limits
        self._w = ResponseWriter(m, loop, transport, limits, self._secure)
        self._st = H1State(limits, self._port, self._secure, self._client, self._h2c, loop.time,
                           self._on_body_read, self, m.closing)
        if not m.has_room():
            self._refuse()
            return
        if self._secure and alpn(transport) == "h2":
            self._to_http2(transport)
            return
        m.register(self, loop)
        # The task starts with the first thing it has to do (a head, a deadline, the end):
        # a connection costs no task, future or loop turn while nothing has come.

    def _to_http2(self, transport: asyncio.Transport, received: bytes = b"") -> None:
        """The handshake chose HTTP/2, or the client opened with HTTP/2's preface on an h2c
        port: the connection is an :class:`H2Protocol` from now on."""
        from .h2conn import H2Protocol

        h2p = H2Protocol(self._m, self._port, transport, self._client, self._secure)
        transport.set_protocol(h2p)
        self._m.register(h2p, self._loop)
        h2p.start(received)

    def data_received(self, data: bytes) -> None:
        try:
            st = self._st
            if st.phase == _TUNNEL:
                self._tunnel.feed(data)  # type: ignore[union-attr]  # set in the TUNNEL phase
                return
            st.receive(data)
            if st.todo:
                if st.todo & st_.H2:
                    self._to_http2(self._transport, data)
                self._act()
        except Exception:
            self._crash("reading a request")

    def eof_received(self) -> bool | None:
        try:
            self._signal_gone()
            st = self._st
            ph = st.phase
            if ph == _TUNNEL:
                st.eof = True
                self._tunnel.feed_eof()  # type: ignore[union-attr]  # set in the TUNNEL phase
                return True  # the tunnel decides when to close
            st.receive_eof()
            self._act()
            if ph == _LINGER:
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
        self._signal_gone()
        if self._w is not None:
            self._w.connection_lost()
        st = self._st
        if st is not None:
            st.connection_lost()
            if self._tunnel is not None:
                self._tunnel.feed_eof()
            self._act()

    def pause_writing(self) -> None:
        self._w.write_paused = True

    def resume_writing(self) -> None:
        self._w.resume_writing()

    # -- what the state asks for -----------------------------------------------------------------
    def _act(self) -> None:
        st = self._st
        todo = st.todo
        if not todo:
            return
        st.todo = 0
        if todo == _WAKE:  # the common case: a head for the task
            self._wake()
            return
        if todo & st_.CONTINUE and not self._w.lost and not self._transport.is_closing():
            self._transport.write(_CONTINUE)
        if todo & st_.RESUME and self._read_paused:
            self._read_paused = False
            if not st.lost:
                self._transport.resume_reading()
        if todo & st_.PAUSE and not self._read_paused and not st.lost:
            self._read_paused = True
            self._transport.pause_reading()
        if todo & st_.UNSTALL:
            self._loop.call_soon(self._unstall)
        if todo & st_.WAKE:
            self._wake()

    def _wake(self) -> None:
        """The state has something for the task: wake it, or start it the first time."""
        w = self._waiter
        if w is not None:
            if not w.done():
                w.set_result(None)
        elif self._task is None:
            self._task = self._loop.create_task(self._run())

    def _on_body_read(self) -> None:
        """Called by the request body on each read (100-continue, resume after back-pressure)."""
        self._st.body_read()
        self._act()

    def _unstall(self) -> None:
        self._st.unstall()
        self._act()

    async def _wait(self) -> None:
        """Until the state wakes the task (WAKE)."""
        fut = self._waiter = self._loop.create_future()
        try:
            await fut
        finally:
            self._waiter = None

    # -- ClientLink: whether the client has gone -------------------------------------------------
    @property
    def client_gone(self) -> bool:
        st = self._st
        return st is None or st.lost or st.eof

    async def wait_client_gone(self) -> None:
        if self.client_gone:
            return
        if self._gone is None:
            self._gone = self._loop.create_future()
        await asyncio.shield(self._gone)  # one waiter's cancellation leaves it for the others

    def _signal_gone(self) -> None:
        g = self._gone
        if g is not None and not g.done():
            g.set_result(None)

    @property
    def tls_version(self) -> str | None:
        """The TLS version the handshake chose (``TLSv1.3``), ``None`` on a plain socket."""
        ssl_object = self._transport.get_extra_info("ssl_object") if self._secure else None
        return ssl_object.version() if ssl_object is not None else None

    @property
    def awaiting_request(self) -> bool:
        """Idle between requests: waiting for a head with nothing of it received yet."""
        st = self._st
        return (st.phase == _HEAD and st.head is None and not st.seen
                and (self._waiter is not None or self._task is None))

    # -- the manager's interface -----------------------------------------------------------------
    def check_deadlines(self, now: float) -> None:
        """Called by the manager's sweep: act on a read or write deadline that has passed."""
        self._st.expire(now)
        self._act()
        self._w.expire(now)

    def shutdown(self) -> None:
        """Server shutdown: close now if idle, else the current response ends the connection."""
        self._st.shutdown()
        self._act()

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
        st = self._st
        linger = False
        try:
            while True:
                item = st.head
                if item is None:
                    if st.phase == _HEAD and (st.seen or st.eof):
                        st.pump_head()
                        if st.todo:
                            self._act()
                    item = st.head
                    if item is None:
                        if m.closing and st.deadline is None:  # between two requests
                            break
                        if not st.seen and st.deadline is None:
                            st.idle()
                        fut = self._waiter = self._loop.create_future()
                        try:
                            await fut
                        finally:
                            self._waiter = None
                        item = st.head
                st.head = None
                if item is _HANDED:
                    return
                if item is _QUIET or item is None:
                    break
                if type(item) is not Request:
                    await self._answer_error(item)
                    linger = True
                    break
                self._keep = False
                refused = st.refused() if st.body_status else 0  # 413 or 400 owed: no call
                await answer(m, self, item, st.t0, st.m0,
                             error_response(refused) if refused else None)
                if not (self._keep and not m.closing and not st.lost):
                    linger = st.phase != _REST
                    break
                limits = m.limits
                st.next_cycle(limits)
                self._w.limits = limits
                if self._read_paused:  # by a pipelined flood or a full body buffer
                    self._read_paused = False
                    if not st.lost:
                        self._transport.resume_reading()
            await self._close(linger)
        except asyncio.CancelledError:
            self._transport.abort()
        except Exception:
            log.exception("error on the connection from %s", self._client)
            self._transport.abort()
        finally:
            m.unregister(self)

    def owed(self) -> int:
        """The status the request's body has earned (:class:`~.exchange.Link`)."""
        return self._st.body_status

    async def deliver(self, req: Request | None, response: Response) -> tuple[int, int]:
        """The exchange's way out (:class:`~.exchange.Link`): the response, then what the
        connection needs to take the next request (the rest of the body drained)."""
        assert req is not None  # HTTP/1.1 answers only parsed requests through the exchange
        st = self._st
        w = self._w
        w.sent = 0
        status = 0
        keep = False
        try:
            if response.status == 101 or isinstance(response.body, TunnelBody):
                status = await self._switch(req, response)
                return status, w.sent
            keep = st.keep and not self._m.closing and st.can_keep()
            w.request = req
            try:
                status, keep = await w.send(response, req.method == "HEAD",
                                            req.version == "1.0", keep)
            finally:
                w.request = None  # an idle connection holds no request
            if keep and st.phase != _REST:
                keep = await self._drain()
        except ClientDisconnected:
            keep = False
        self._keep = keep
        return status, w.sent

    async def _switch(self, req: Request, response: Response) -> int:
        """``101 Switching Protocols``: the head, then the connection is the tunnel's until its
        ``run`` returns. Only for a request that asked to upgrade and sent no body."""
        body = response.body
        w = self._w
        asked = any(t.strip().lower() == "upgrade"
                    for v in req.headers.get_all("connection") for t in v.split(","))
        if (response.status != 101 or not isinstance(body, TunnelBody) or not asked
                or self._st.phase != _REST or req.version != "1.1"):
            log.error("cannot switch protocols for %s %s: %s", req.method, req.target,
                      "the request did not ask to upgrade" if not asked else
                      "a 101 answer needs a TunnelBody, and a TunnelBody a 101")
            await aclose_body(response)
            status, _ = await w.send(error_response(500), req.method == "HEAD",
                                     req.version == "1.0", False)
            return status
        try:
            head = build_switch_head(response.headers.items(), self._m.server_line)
        except ValueError as exc:
            log.error("cannot send the 101 answer: %s", exc)
            status, _ = await w.send(error_response(500), False, False, False)
            return status
        tunnel = self._tunnel = Tunnel(self._transport, w.drain_writes)
        self._transport.write(head)
        rest = self._st.start_tunnel()  # what the client sent after its request, if anything
        if rest:
            tunnel.feed(rest)
        if self._st.eof:
            tunnel.feed_eof()
        self._act()
        try:
            await body.run(tunnel)
        except ClientDisconnected:
            pass
        except Exception:
            log.exception("the connection switched to another protocol failed")
        finally:
            w.sent = tunnel.sent
            if not self._transport.is_closing():
                self._transport.close()
        return 101

    async def _drain(self) -> bool:
        """Read and discard what is left of the request body (bounded); True if it all came."""
        st = self._st
        if st.phase != _BODY:
            return st.phase == _REST
        waiting = st.start_drain()
        self._act()
        if waiting:
            await self._wait()
        return st.end_drain()

    async def _close(self, linger: bool) -> None:
        tr = self._transport
        st = self._st
        if st.lost or tr.is_closing():
            return
        if linger and not st.eof and tr.can_write_eof():
            st.start_linger()
            self._act()
            tr.write_eof()
            if not st.lost:
                await self._wait()
        if st.lost or tr.is_closing():
            return
        if tr.get_write_buffer_size():
            # close() waits for the buffer to flush: bound that wait.
            self._loop.call_later(st.limits.read_timeout, tr.abort)
        tr.close()

    # -- connection-level answers ----------------------------------------------------------------
    async def _answer_error(self, err: HeadError) -> None:
        """A head refused before any request could be built (400, 408, 414, 431, 505…)."""
        m = self._m
        st = self._st
        m.in_flight += 1
        status = err.status
        response = error_response(status)
        sent = 0
        try:
            if not st.lost and not self._transport.is_closing():
                head, _, _, _ = build_head(status, None, response.headers, response.body.length,
                                           False, False, False, m.server_line)
                data = response.body.data  # type: ignore[attr-defined]  # a BytesBody here
                self._transport.write(head + data)
                sent = len(data)
        finally:
            m.in_flight -= 1
            if m.access_log is not None:
                if not st.t0:
                    st.t0 = time.time()
                    st.m0 = self._loop.time()
                emit(m, AccessRecord(
                    st.t0, self._client, getattr(err, "method", None),
                    getattr(err, "target", None), getattr(err, "version", None), None, None,
                    None, None, status, sent, self._loop.time() - st.m0, None, self._port,
                    self._secure))

    def _refuse(self) -> None:
        """Over ``max_connections`` (or shutting down): 503, then close."""
        self._st.phase = _LINGER
        self._st.deadline = None
        tr = self._transport
        m = self._m
        response = error_response(503)
        head, _, _, _ = build_head(503, None, response.headers, response.body.length, False,
                                   False, False, m.server_line)
        data = response.body.data  # type: ignore[attr-defined]  # a BytesBody here
        tr.write(head + data)
        if m.access_log is not None:
            emit(m, AccessRecord(time.time(), self._client, None, None, None, None, None,
                                 None, None, 503, len(data), 0.0, None, self._port,
                                 self._secure))
        if tr.can_write_eof():
            tr.write_eof()
            self._loop.call_later(st_.LINGER_TIME / 2, tr.close)
        else:
            tr.close()
