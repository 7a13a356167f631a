"""HTTP/3 over QUIC: the same Request, pipeline, Response and access line as HTTP/1.1 and
HTTP/2, QUIC and HTTP/3 framing (with QPACK) by ``aioquic``.

One :class:`H3Protocol` per QUIC connection, created by the port's endpoint
(:mod:`.quicendpoint`), which routes each datagram to it by connection ID. Each request stream
becomes a :class:`Request` answered by :func:`~.exchange.answer` on a task of its own, as an
HTTP/2 stream is, with ``version`` ``"3"`` (``HTTP/3`` in the access log, ``http_version``
``"3"`` for ASGI applications). Limits:

- at most ``MAX_STREAMS`` concurrent request streams (QUIC's MAX_STREAMS, so a client cannot
  even open more; any past it are refused with H3_REQUEST_REJECTED);
- the header list is bounded by ``<maxheadersize>`` and bodies by ``<maxrequestbodysize>``;
- request bodies are flow-controlled: a stream's window (MAX_STREAM_DATA) grows only while its
  body has room (:class:`~.quicconn.FlowControlled`), so a step that reads slowly slows its
  own client;
- response bodies wait while more than ``SEND_HIGH_WATER`` bytes of the stream are not yet
  acknowledged by the client, so a client that does not read holds one window, not the file;
- more than ``MAX_EARLY_RESETS`` streams reset before their answer close the connection
  (H3_EXCESSIVE_LOAD);
- idle for ``<keepalivetimeout>``: closed (QUIC's idle timeout, and GOAWAY once no stream is
  left).

Reload and shutdown send GOAWAY: streams in flight finish, new ones are refused (the client
retries them on a new connection), then the connection is closed with H3_NO_ERROR.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import ErrorCode, FrameType, H3Connection, encode_frame
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic import events as qe
from aioquic.quic.connection import QuicConnectionState

from .body import send_ending
from .exchange import answer
from .incoming import HeadError
from .quicconn import MAX_STREAMS, FlowControlled
from .request import Request, RequestBody
from .response import Response, error_response
from .streamhead import StreamLink, build_request, stream_head
from .wire import field_block

if TYPE_CHECKING:
    from .quicendpoint import QuicEndpoint

log = logging.getLogger("ocsi.http")

MAX_EARLY_RESETS = 200
#: Unacknowledged response bytes of one stream past which its sender waits.
SEND_HIGH_WATER = 256 * 1024
#: Seconds a closing connection waits for the client to acknowledge the last answers.
CLOSE_LINGER = 2.0




class H3Protocol:
    """One QUIC connection carrying HTTP/3; registered with the manager like a TCP one."""

    def __init__(self, endpoint: QuicEndpoint, quic: FlowControlled,
                 addr: tuple[Any, ...]) -> None:
        self._endpoint = endpoint
        self._m = endpoint.manager
        self._port = endpoint.port
        self._quic = quic
        self._addr = addr
        self._client = str(addr[0])
        self._loop = asyncio.get_running_loop()
        self._limits = self._m.limits
        self._server = self._limits.server_name.encode("latin-1")
        self._h3 = H3Connection(quic)
        self._streams: dict[int, StreamLink] = {}
        self._resets = 0
        self._next_id = 0  # the lowest request stream id not seen yet (GOAWAY's)
        self._draining = False
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._transmit_handle: asyncio.Handle | None = None
        self._progress: asyncio.Future[None] | None = None  # ACKs or window updates arrived
        self._deadline: float | None = self._loop.time() + self._limits.keepalive_timeout
        self._gone: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[None] | None = None  # _close has begun
        self._m.register(self, self._loop)

    # -- ClientLink ------------------------------------------------------------------------------
    @property
    def client_gone(self) -> bool:
        return self._closed

    #: QUIC carries TLS 1.3 only (RFC 9001).
    tls_version = "TLSv1.3"

    async def wait_client_gone(self) -> None:
        if self._closed:
            return
        if self._gone is None:
            self._gone = self._loop.create_future()
        await asyncio.shield(self._gone)

    # -- the manager's interface ---------------------------------------------------------------
    def shutdown(self) -> None:
        """GOAWAY now (streams already opened are answered), close once they are done."""
        if self._closed or self._draining:
            return
        self._draining = True
        control = self._h3._local_control_stream_id
        if control is not None and self._quic._state == QuicConnectionState.CONNECTED:
            self._quic.send_stream_data(control, encode_frame(FrameType.GOAWAY,
                                                              encode_uint_var(self._next_id)))
        if not self._streams:
            self._close(ErrorCode.H3_NO_ERROR)
        else:
            self.transmit()

    def reloaded(self) -> None:
        """As HTTP/2 does: GOAWAY, and the next streams go on a new connection (with the
        certificates now in force)."""
        self.shutdown()

    def abort(self) -> None:
        if not self._closed:
            self._quic.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase="server stopping")
            self.transmit()
        self._terminated()

    def check_deadlines(self, now: float) -> None:
        if self._deadline is not None and now > self._deadline and not self._streams:
            self.shutdown()  # idle for keepalive_timeout

    # -- datagrams and timers ----------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._closed:
            return
        self._quic.receive_datagram(data, addr, now=self._loop.time())
        self._process()

    def _process(self) -> None:
        quic = self._quic
        while (event := quic.next_event()) is not None:
            if isinstance(event, qe.ConnectionIdIssued):
                self._endpoint.route(event.connection_id, self)
            elif isinstance(event, qe.ConnectionIdRetired):
                self._endpoint.unroute(event.connection_id)
            elif isinstance(event, qe.ConnectionTerminated):
                self._terminated()
                return
            elif isinstance(event, (qe.StreamReset, qe.StopSendingReceived)):
                self._reset_by_client(event.stream_id)
            for h3event in self._h3.handle_event(event):
                self._event(h3event)
            if self._closed:
                return
        p = self._progress
        if p is not None and not p.done():
            p.set_result(None)
        # after the tasks this datagram woke have run: answers ready by then go out with the
        # acknowledgement, in one datagram
        self._transmit_soon()

    def transmit(self) -> None:
        """Send what QUIC has to send, and arm its next timer."""
        self._transmit_handle = None
        if self._closed:
            return
        sendto = self._endpoint.sendto
        for data, addr in self._quic.datagrams_to_send(now=self._loop.time()):
            sendto(data, addr)
        at = self._quic.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None if at is None else self._loop.call_at(at, self._on_timer)
            self._timer_at = at

    def _transmit_soon(self) -> None:
        if self._transmit_handle is None:
            self._transmit_handle = self._loop.call_soon(self.transmit)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        if self._closed:
            return
        self._quic.handle_timer(now=self._loop.time())
        self._process()

    # -- HTTP/3 events ---------------------------------------------------------------------------
    def _event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None:
                if event.stream_id >= self._next_id:  # a new request (not late trailers)
                    self._next_id = event.stream_id + 4
                    self._request(event)
            elif event.stream_ended:  # trailers: the body is complete
                stream.ended = True
                stream.body.end()
        elif isinstance(event, DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                if event.data:
                    stream.body.feed(event.data)
                    if not stream.body.wants_more():
                        self._quic.paused.add(event.stream_id)
                if event.stream_ended:
                    stream.ended = True
                    stream.body.end()

    def _reset_by_client(self, sid: int) -> None:
        stream = self._streams.pop(sid, None)
        if stream is None:
            return
        stream.body.fail(ConnectionError("the client reset the stream"))
        if stream.task is not None:
            stream.task.cancel()
        self._quic.paused.discard(sid)
        self._quic.started.discard(sid)
        try:
            self._quic.reset_stream(sid, ErrorCode.H3_REQUEST_CANCELLED)
        except Exception:  # noqa: BLE001 - already reset or finished
            pass
        self._resets += 1
        if self._resets > MAX_EARLY_RESETS:
            log.warning("HTTP/3 client %s reset more than %d streams before their answer: "
                        "closing the connection", self._client, MAX_EARLY_RESETS)
            self._close(ErrorCode.H3_EXCESSIVE_LOAD, flush=False)

    def _refuse(self, sid: int) -> None:
        try:
            self._quic.reset_stream(sid, ErrorCode.H3_REQUEST_REJECTED)
            self._quic.stop_stream(sid, ErrorCode.H3_REQUEST_REJECTED)
        except Exception:  # noqa: BLE001
            pass

    def _request(self, event: HeadersReceived) -> None:
        sid = event.stream_id
        if self._draining or len(self._streams) >= MAX_STREAMS:
            self._refuse(sid)  # after GOAWAY, or one too many: the client may retry it
            return
        self._deadline = None
        limits = self._limits
        fields: dict[bytes, bytes] = {}
        regular: list[tuple[str, str]] = []
        size = 0
        for name, value in event.headers:
            size += len(name) + len(value) + 32
            if name.startswith(b":"):
                fields[name] = value
            else:
                regular.append((name.decode("latin-1"), value.decode("latin-1")))
        method, target, host, length = stream_head(fields, regular, event.stream_ended)
        body = RequestBody(length, limits.max_body, lambda: self._credit(sid))
        if length == 0:
            body.end()
        stream = self._streams[sid] = StreamLink(body, self, sid, method)
        self._quic.started.add(sid)
        stream.ended = event.stream_ended
        try:
            if size > limits.max_header_bytes or len(regular) > limits.max_headers:
                raise HeadError(431, "header list too large")
            request = build_request(method, target, regular, host, "3", self._port, True,
                                    self._client, body)
        except HeadError as exc:
            stream.task = self._loop.create_task(
                self._answer(stream, None, method, target, error_response(exc.status)))
            return
        request.link = self
        stream.task = self._loop.create_task(self._answer(stream, request, method, target, None))

    def _credit(self, sid: int) -> None:
        """The body of ``sid`` has room again: its window may grow (:mod:`.quicconn`)."""
        stream = self._streams.get(sid)
        if sid in self._quic.paused and (stream is None or stream.body.wants_more()):
            self._quic.paused.discard(sid)
            self._transmit_soon()

    # -- answering -------------------------------------------------------------------------------
    async def _answer(self, stream: StreamLink, request: Request | None, method: str, target: str,
                      response: Response | None) -> None:
        sid = stream.sid
        try:
            await answer(self._m, stream, request, time.time(), self._loop.time(), response)
        except asyncio.CancelledError:
            pass  # the stream was reset or the connection is gone
        except Exception:  # noqa: BLE001 - one stream fails, the connection goes on
            log.exception("error sending the answer to %s %s", method, target)
            if not self._closed:
                try:
                    self._quic.reset_stream(sid, ErrorCode.H3_INTERNAL_ERROR)
                except Exception:  # noqa: BLE001
                    pass
                self._transmit_soon()
        finally:
            self._quic.paused.discard(sid)
            self._quic.started.discard(sid)
            if self._streams.pop(sid, None) is not None and not stream.ended \
                    and not self._closed:
                # answered before the client finished its body: it need not send the rest
                try:
                    self._quic.stop_stream(sid, ErrorCode.H3_NO_ERROR)
                except Exception:  # noqa: BLE001
                    pass
                self._transmit_soon()
            if not self._streams and not self._closed:
                if self._draining:
                    self._close(ErrorCode.H3_NO_ERROR)
                else:
                    self._deadline = self._loop.time() + self._limits.keepalive_timeout

    async def _send(self, sid: int, response: Response, head_only: bool) -> int:
        headers, no_body = field_block(response.status, response.headers.items(),
                                       response.body.length, head_only, self._server)
        if self._closed:
            return 0
        self._h3.send_headers(sid, headers, end_stream=no_body)
        self._transmit_soon()
        if no_body:
            return 0
        return await send_ending(response.body, lambda data, end: self._data(sid, data, end))

    async def _data(self, sid: int, data: bytes, end: bool) -> None:
        """Queue ``data`` on stream ``sid`` once the client has acknowledged enough of what was
        queued before (QUIC's flow control and congestion control pace the rest)."""
        if not data and not end:
            return
        while True:
            if self._closed:
                raise ConnectionError("the connection is gone")
            qstream = self._quic._streams.get(sid)
            if qstream is None or sid not in self._streams:
                raise ConnectionError("the stream is gone")
            if len(qstream.sender._buffer) <= SEND_HIGH_WATER:
                break
            if self._progress is None or self._progress.done():
                self._progress = self._loop.create_future()
            await self._progress
        self._h3.send_data(sid, data, end_stream=end)
        self._transmit_soon()

    # -- the end -----------------------------------------------------------------------------------
    def _close(self, code: int, flush: bool = True) -> None:
        """Close with ``code`` once the client has acknowledged the answers (at most
        ``CLOSE_LINGER`` seconds; at once unless ``flush``): QUIC's close drops stream data not
        sent yet. The connection is over when QUIC says so (ConnectionTerminated, after its
        closing period)."""
        if self._closed or self._closing is not None:
            return
        if flush and self._unacknowledged():
            self._closing = self._loop.create_task(self._close_after_flush(code))
        else:
            self._closing = self._loop.create_future()
            self._close_now(code)

    def _unacknowledged(self) -> bool:
        return any(sid % 4 == 0 and not stream.sender.is_finished
                   for sid, stream in self._quic._streams.items())

    async def _close_after_flush(self, code: int) -> None:
        deadline = self._loop.time() + CLOSE_LINGER
        while not self._closed and self._unacknowledged():
            left = deadline - self._loop.time()
            if left <= 0:
                break
            if self._progress is None or self._progress.done():
                self._progress = self._loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._progress), left)
            except (asyncio.TimeoutError, TimeoutError):
                break
        self._close_now(code)

    def _close_now(self, code: int) -> None:
        if not self._closed and self._quic._state not in (QuicConnectionState.CLOSING,
                                                           QuicConnectionState.DRAINING,
                                                           QuicConnectionState.TERMINATED):
            self._quic.close(error_code=code)
            self.transmit()

    def _terminated(self) -> None:
        """QUIC says the connection is over (closed, timed out, or aborted here)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transmit_handle is not None:
            self._transmit_handle.cancel()
            self._transmit_handle = None
        if self._closing is not None and not self._closing.done():
            self._closing.cancel()
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        p = self._progress
        if p is not None and not p.done():
            p.set_result(None)
        for stream in self._streams.values():
            stream.body.fail(ConnectionError("the client closed the connection"))
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        self._endpoint.forget(self)
        self._m.unregister(self)
