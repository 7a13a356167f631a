"""HTTP/2 over TLS (ALPN ``h2``): the same Request, pipeline, Response and access line as
HTTP/1.1, frames by the ``h2`` library (jh2 when installed), but for a response's HEADERS and
DATA, which :mod:`.h2send` writes through jh2's state machines, windows and HPACK encoder.

A TLS connection whose handshake chose ``h2`` is handed over from :class:`~.protocol.HTTPProtocol`
to :class:`H2Protocol` before any byte is read. Each stream becomes a :class:`Request` answered by
the manager's app on a task of its own. Limits:

- at most ``MAX_STREAMS`` concurrent streams (announced in SETTINGS; more are refused);
- the header list is bounded by ``<maxheadersize>`` (announced in SETTINGS);
- bodies are bounded by ``<maxrequestbodysize>``;
- flow control is respected both ways: a response waits for the client's window, and the
  connection's writes wait while the transport's buffer is full.

A request whose method, target or fields an HTTP/1.1 head could not hold (:mod:`.fieldcheck`)
is answered 400 on its stream, before any step sees it.

A protocol error closes the connection with GOAWAY and its error code, logged once. A stream
the client resets is cancelled; more than ``MAX_EARLY_RESETS`` of them close the connection
(one log line; what the client sent after is not handled),
and so does a client that lets ``MAX_UNREAD`` bytes pile up (a PING or SETTINGS flood). On shutdown, GOAWAY is sent and streams in flight finish.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typed against h2; jh2 has the same interface
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    import hyperframe.frame
else:
    try:  # jh2: h2's state machine and frames, with HPACK compiled (the ``fast`` extra)
        import jh2 as h2
        import jh2.config
        import jh2.connection
        import jh2.errors
        import jh2.events
        import jh2.exceptions
        import jh2.hyperframe.frame
        from jh2 import hyperframe
    except ImportError:
        import h2.config
        import h2.connection
        import h2.errors
        import h2.events
        import h2.exceptions
        import hyperframe.frame  # h2's own frame layer

from . import h2send
from .body import one_piece, send_ending
from .exchange import answer
from .h2fields import MalformedRequest, split_request
from .incoming import EMPTY_BODY, HeadError
from .request import Request, RequestBody
from .response import Response, error_response
from .streamhead import StreamLink, build_request, stream_head
from .wire import field_block

if TYPE_CHECKING:
    from .shared import Shared

log = logging.getLogger("ocsi.http")

MAX_STREAMS = 100
#: Streams a client may reset before their answer, per connection, before it is closed with
#: ENHANCE_YOUR_CALM (the "rapid reset" attack opens and cancels streams to make work).
MAX_EARLY_RESETS = 200
#: Bytes queued for a client that does not read, past which it is dropped. Answers wait for
#: the transport's buffer to drain (pause_writing), so only frames h2 answers by itself (PING
#: and SETTINGS acknowledgements: a flood) can pile up this far.
MAX_UNREAD = 1024 * 1024
#: The connection's receive window. Each stream's own window is the default 65,535 bytes and is
#: given back only as its body is read (back-pressure per stream); the connection's is large
#: enough for every stream's at once, so one stream that nobody reads never stalls the others.
CONNECTION_WINDOW = MAX_STREAMS * 65_535
#: A file body up to this size is read at once and sent as one DATA frame (the smallest
#: frame size a peer may ask for, RFC 9113 §6.5.2).
ONE_READ = 16_384


class _Stream(StreamLink):
    """An HTTP/2 stream: its flow-control state besides what every stream has."""

    __slots__ = ("window", "unacked")

    def __init__(self, body: RequestBody, conn: H2Protocol, sid: int, method: str) -> None:
        super().__init__(body, conn, sid, method)
        self.window: asyncio.Event | None = None
        #: Received body bytes not yet given back to the client's window (the body is full).
        self.unacked = 0


#: How long a closed HTTP/2 connection may take to say goodbye before it is aborted.
CLOSE_LINGER = 2.0


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection; registered with the manager like an HTTP/1.1 one."""

    def __init__(self, manager: Shared, port: int, transport: asyncio.Transport, client: str,
                 secure: bool = True) -> None:
        self._m = manager
        self._secure = secure
        self._port = port
        self._transport = transport
        self._client = client
        self._loop = asyncio.get_running_loop()
        limits = manager.limits
        self._limits = limits
        self._server = limits.server_name.encode("latin-1")
        # Inbound headers are validated by h2. Outbound ones are ours: names are lower-case
        # already, and values are checked for CR, LF and NUL in _send, which is much cheaper.
        # Inbound blocks are checked by :func:`~.h2fields.split_request` in one pass, which
        # refuses what h2's own validation would, for a fraction of its cost.
        config = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False,
                                           validate_inbound_headers=False,
                                           normalize_inbound_headers=False)
        self._h2 = h2.connection.H2Connection(config)
        #: jh2 with its compiled HPACK: responses are framed by :mod:`.h2send`.
        self._fast = h2send.usable(self._h2)
        # Every value that bounds what a client may make the server hold is given, not left to
        # the library's defaults (jh2's are a 6 MiB stream window and a 64 KiB HPACK table).
        codes = h2.settings.SettingCodes
        self._h2.local_settings = h2.settings.Settings(client=False, initial_values={
            codes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
            codes.MAX_HEADER_LIST_SIZE: limits.max_header_bytes,
            codes.INITIAL_WINDOW_SIZE: 65_535,
            codes.HEADER_TABLE_SIZE: 4096,
            codes.MAX_FRAME_SIZE: 16_384,
        })
        self._streams: dict[int, _Stream] = {}
        self._resets = 0
        self._draining = False  # GOAWAY sent: close once the streams in flight are done
        self._closed = False
        self._write_ready: asyncio.Future[None] | None = None
        self._flush_pending = False  # a _flush is scheduled (_flush_soon)
        self._deadline: float | None = self._loop.time() + limits.keepalive_timeout
        self._gone: asyncio.Future[None] | None = None

    # -- ClientLink: the client has gone ---------------------------------------------------------
    @property
    def client_gone(self) -> bool:
        return self._closed

    async def wait_client_gone(self) -> None:
        if self._closed:
            return
        if self._gone is None:
            self._gone = self._loop.create_future()
        await asyncio.shield(self._gone)

    @property
    def tls_version(self) -> str | None:
        """The TLS version the handshake chose, ``None`` for h2c."""
        ssl_object = self._transport.get_extra_info("ssl_object") if self._secure else None
        return ssl_object.version() if ssl_object is not None else None

    # -- the manager's interface ---------------------------------------------------------------
    def start(self, received: bytes = b"") -> None:
        """Send the server's preface; ``received``: bytes already read (h2c's client preface)."""
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - 65_535)
        self._flush()
        if received:
            self.data_received(received)

    def shutdown(self) -> None:
        """Stop taking streams: GOAWAY now, close once the streams in flight are done.

        The GOAWAY frame is written here, not by ``h2``: h2's connection refuses to send
        anything once it has sent one, which would cut the streams in flight short."""
        if not self._closed and not self._draining:
            self._draining = True
            goaway = hyperframe.frame.GoAwayFrame(0)
            goaway.last_stream_id = self._h2.highest_inbound_stream_id
            goaway.error_code = h2.errors.ErrorCodes.NO_ERROR
            self._flush()
            self._transport.write(goaway.serialize())
            if not self._streams:
                self._close()

    def reloaded(self) -> None:
        """After a reload, as nginx does: GOAWAY, the streams in flight finish, and the client
        opens a new connection for the next ones, with the certificates now in force."""
        self.shutdown()

    def abort(self) -> None:
        self._closed = True
        self._transport.abort()

    def check_deadlines(self, now: float) -> None:
        if self._deadline is not None and now > self._deadline and not self._streams:
            self.shutdown()  # idle for keepalive_timeout

    # -- asyncio ---------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.warning("HTTP/2 protocol error from %s: %s", self._client, exc)
            self._close()  # after the GOAWAY with the error code, which h2 has queued
            return
        for event in events:
            if self._closed:
                return  # closed by an earlier event (rapid reset): nothing more is handled
            self._event(event)
        self._flush()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        for stream in self._streams.values():
            if stream.body is not EMPTY_BODY:
                stream.body.fail(ConnectionError("the client closed the connection"))
            if stream.window is not None:
                stream.window.set()
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        w = self._write_ready
        if w is not None and not w.done():
            w.set_result(None)
        self._m.unregister(self)

    def pause_writing(self) -> None:
        if self._write_ready is None or self._write_ready.done():
            self._write_ready = self._loop.create_future()

    def resume_writing(self) -> None:
        w = self._write_ready
        if w is not None and not w.done():
            w.set_result(None)

    # -- events ----------------------------------------------------------------------------------
    def _event(self, event: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id)
            size = event.flow_controlled_length
            if stream is None:  # answered already: drop the data, give the window back
                self._h2.acknowledge_received_data(size, event.stream_id)
            else:
                stream.body.feed(bytes(event.data))
                stream.unacked += size
                self._credit(event.stream_id, flush=False)  # data_received flushes
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None and not stream.ended:  # ended: by its HEADERS, known already
                stream.ended = True
                stream.body.end()
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                if stream.body is not EMPTY_BODY:
                    stream.body.fail(ConnectionError("the client reset the stream"))
                if stream.task is not None:
                    stream.task.cancel()
                self._resets += 1
                if self._resets > MAX_EARLY_RESETS:
                    log.warning("HTTP/2 client %s reset more than %d streams before their answer: "
                                "closing the connection", self._client, MAX_EARLY_RESETS)
                    self._h2.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                    self._close()
        elif isinstance(event, h2.events.WindowUpdated):
            targets = (self._streams.values() if event.stream_id == 0
                       else [s for s in (self._streams.get(event.stream_id),) if s is not None])
            for stream in targets:
                if stream.window is not None:
                    stream.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._close()

    def _request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        if self._draining:  # after GOAWAY: the client may retry it on a new connection
            self._reset(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        self._deadline = None
        try:
            fields, regular = split_request(event.headers)
        except MalformedRequest as exc:
            log.info("HTTP/2 stream %d from %s refused: %s", sid, self._client, exc)
            self._reset(sid, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        ended = event.stream_ended is not None
        method, target, host, length = stream_head(fields, regular, ended)
        if ended:  # no body, as HTTP/1.1's requests without one: the shared empty body
            body = EMPTY_BODY
        else:
            body = RequestBody(length, self._limits.max_body, lambda: self._credit(sid))
            if length == 0:
                body.end()
        stream = self._streams[sid] = _Stream(body, self, sid, method)
        stream.ended = ended
        try:
            request = build_request(method, target, regular, host, "2.0", self._port,
                                    self._secure, self._client, body)
        except HeadError as exc:
            stream.task = self._loop.create_task(self._answer(stream, None, method, target,
                                                              error_response(exc.status)))
            return
        request.link = self
        stream.task = self._loop.create_task(self._answer(stream, request, method, target, None))

    def _credit(self, sid: int, flush: bool = True) -> None:
        """Give a stream's received bytes back to the client's window once its body has room:
        a step that reads slowly slows its own client down, and only that stream."""
        stream = self._streams.get(sid)
        if stream is not None and stream.unacked and stream.body.wants_more():
            size, stream.unacked = stream.unacked, 0
            self._h2.acknowledge_received_data(size, sid)
            if flush:
                self._flush()

    # -- answering -------------------------------------------------------------------------------
    async def _answer(self, stream: _Stream, request: Request | None, method: str, target: str,
                      response: Response | None) -> None:
        """One stream's exchange (:func:`~.exchange.answer`), then the stream's end: reset if
        the client is still sending, the connection closed if it was draining."""
        sid = stream.sid
        try:
            await answer(self._m, stream, request, time.time(), self._loop.time(), response)
        except asyncio.CancelledError:
            pass  # the stream was reset or the connection is gone
        except Exception:  # noqa: BLE001 - one stream fails, the connection goes on
            log.exception("error sending the answer to %s %s", method, target)
            self._reset(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        finally:
            if self._streams.pop(sid, None) is not None and not stream.ended \
                    and not self._closed:
                # answered before the client finished its body: it need not send the rest
                self._reset(sid, h2.errors.ErrorCodes.NO_ERROR)
            if not self._streams:
                if self._draining:
                    self._close()
                else:
                    self._deadline = self._loop.time() + self._limits.keepalive_timeout

    async def _send(self, sid: int, response: Response, head_only: bool) -> int:
        if self._closed:
            return 0
        fast = self._fast
        if fast:
            headers, no_body = h2send.response_block(response.status, response.headers.items(),
                                                     response.body.length, head_only, self._server)
        else:
            pairs, no_body = field_block(response.status, response.headers.items(),
                                         response.body.length, head_only, self._server)
        body = response.body
        # a body of bytes, or a file that fits a frame (read before the HEADERS), is one piece:
        # no chunk iterator; an empty one ends with the HEADERS
        data = None if no_body else one_piece(body, ONE_READ)
        if no_body or data == b"":
            if fast:
                h2send.send_headers(self._h2, sid, headers, True)
            else:
                self._h2.send_headers(sid, pairs, end_stream=True)
            self._flush_soon()
            return 0
        if data is not None and fast and h2send.send_answer(self._h2, sid, headers, data):
            self._flush_soon()  # the usual answer: HEADERS and one DATA frame
            w = self._write_ready
            if w is not None and not w.done():
                await w
            return len(data)
        if fast:
            h2send.send_headers(self._h2, sid, headers, False)
        else:
            self._h2.send_headers(sid, pairs, end_stream=False)
        if data is not None:
            await self._data(sid, data, True)
            return len(data)
        # HEADERS wait for the first DATA frame, and the last piece carries END_STREAM: a small
        # answer is one write
        return await send_ending(body, lambda data, end: self._data(sid, data, end))

    async def _data(self, sid: int, data: bytes, end: bool) -> None:
        """Send ``data`` within the windows (``end``: and end the stream with it)."""
        if not data and not end:
            return
        conn = self._h2
        fast = self._fast
        view = memoryview(data)
        while True:
            if self._closed:
                raise ConnectionError("the connection is gone")
            window = (h2send.window(conn, sid) if fast else
                      min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size))
            if window <= 0 and view:
                self._flush()
                stream = self._streams.get(sid)
                if stream is None:
                    raise ConnectionError("the stream is gone")
                stream.window = asyncio.Event()
                await stream.window.wait()
                continue
            if len(view) <= window:  # the rest in one frame
                piece, view = (data if len(view) == len(data) else bytes(view)), view[:0]
            else:
                piece, view = bytes(view[:window]), view[window:]
            last = end and not view
            if fast:
                h2send.send_data(conn, sid, piece, last)
            else:
                conn.send_data(sid, piece, end_stream=last)
            if last or not view:
                break
        self._flush_soon()
        w = self._write_ready
        if w is not None and not w.done():
            await w

    def _reset(self, sid: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self._h2.reset_stream(sid, code)
            self._flush()
        except h2.exceptions.ProtocolError:
            pass

    # -- writing ---------------------------------------------------------------------------------
    def _flush_soon(self) -> None:
        """Write what h2 has queued once the streams answering now have all queued theirs:
        sixteen answers to one read become one TLS write instead of sixteen."""
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        data = self._h2.data_to_send()
        if data and not self._closed:
            self._transport.write(data)
            if self._transport.get_write_buffer_size() > MAX_UNREAD:
                log.warning("HTTP/2 client %s does not read what it asks for (%d bytes "
                            "waiting): closing the connection", self._client, MAX_UNREAD)
                self.abort()

    def _close(self) -> None:
        """Close after writing what h2 has queued (the last answers, a GOAWAY).

        Over TLS, asyncio reports the connection lost only once the client has answered the
        TLS close (or after half a minute): a client that keeps an idle connection and never
        reads (a browser's preconnection) would hold a shutdown for its whole timeout. So the
        connection is aborted if it is still open :data:`CLOSE_LINGER` seconds later."""
        if not self._closed:
            self._flush()
            self._closed = True
            self._transport.close()
            self._loop.call_later(CLOSE_LINGER, self._transport.abort)
