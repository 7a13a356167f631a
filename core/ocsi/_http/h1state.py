"""One HTTP/1.1 connection's state, without IO: what h11 is to h11-based servers, for ocsi.

:class:`H1State` is fed what the socket brings (:meth:`~H1State.receive`,
:meth:`~H1State.receive_eof`, :meth:`~H1State.connection_lost`) and what the clock says
(:meth:`~H1State.expire`). It holds:

- the reading phase (a head, a body, the request complete, reading over, lingering, a tunnel);
- the request head waiting to be answered (:attr:`~H1State.head`: a :class:`Request`, a
  :class:`HeadError` to answer, or ``QUIET``/``HANDED``);
- the request body's framing and back-pressure, what is owed because of it (413, 400, 408),
  ``Expect: 100-continue``, the draining of a body left unread;
- keep-alive, and the bounded buffering of pipelined requests;
- one read deadline as data (:attr:`~H1State.deadline` and its kind: idle keep-alive, head,
  body, drain, linger), checked by the manager's periodic sweep, never a timer per request.

It never touches a socket, a loop or a task. What the IO side must do is left as bits in
:attr:`~H1State.todo` (wake the connection's task, pause or resume reading, send
``100 Continue``, resume reading soon, hand the connection to HTTP/2), which the asyncio
adapter (:mod:`.protocol`) carries out after each call. Parsing is h11's (:mod:`.reader`),
canonical heads optionally httptools' (:mod:`.fasthead`).

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import h11

from .fasthead import FastHead
from .fastrequest import read_request
from .incoming import HeadError, error_status, head_size, parse_head
from .limits import Limits
from .reader import RequestReader
from .request import BadRequestBody, ClientDisconnected, ClientLink, Request, RequestBody, RequestTimeout

__all__ = ["H1State"]

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
#: The start of HTTP/2's connection preface (RFC 9113 §3.4), what an h2c client sends first.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Where the reading side is.
HEAD = 0  # waiting for (or receiving) a request head
BODY = 1  # receiving the request body
REST = 2  # request complete; bytes of the next request(s) are buffered
STOP = 3  # reading is over for this connection (error, refused body): discard input
LINGER = 4  # response sent, half-closed, discarding input until the client's FIN
TUNNEL = 5  # switched protocols (101): input goes to the tunnel
# Read deadline kinds.
D_IDLE, D_HEAD, D_BODY, D_DRAIN, D_LINGER = 1, 2, 3, 4, 5
# What the IO side must do (bits of H1State.todo), carried out in this order.
WAKE = 1  # the connection's task has something (a head, the body's end, a failure)
RESUME = 2  # resume reading the socket
PAUSE = 4  # stop reading the socket (applied after RESUME when a call asked for both)
CONTINUE = 8  # write "100 Continue"
UNSTALL = 16  # call unstall() soon (the body has room again)
H2 = 32  # the bytes received are HTTP/2's preface: hand the connection over

QUIET = object()  # "close without answering" in place of a request
HANDED = object()  # "the connection is HTTP/2 now": the task ends, the transport stays open


class H1State:
    """The reading side of one HTTP/1.1 connection and its deadlines, as data."""

    __slots__ = (
        "reader", "limits", "port", "secure", "client", "h2c", "clock", "on_body_read", "link",
        "phase", "head", "deadline", "dkind", "seen", "first", "body", "body_status", "expect",
        "continue_sent", "stalled", "discard", "keep", "t0", "m0", "eof", "lost", "todo",
    )

    def __init__(self, limits: Limits, port: int, secure: bool, client: str, h2c: bool,
                 clock: Callable[[], float], on_body_read: Callable[[], None],
                 link: ClientLink, closing: bool = False) -> None:
        self.reader = RequestReader(limits.max_header_bytes, limits.fast_parser)
        self.limits = limits
        self.port = port
        self.secure = secure
        self.client = client
        self.h2c = h2c  # cleartext HTTP/2 with prior knowledge is accepted on this port
        self.clock = clock  # the loop's time: deadlines are in its seconds
        self.on_body_read = on_body_read  # given to each request body (100-continue, resume)
        self.link = link  # each request's ClientLink (the connection)
        self.phase = HEAD
        self.head: Any = None  # Request | HeadError | QUIET | HANDED, waiting for the task
        # accepted by the loop just before the listener closed (``closing``): still answered,
        # if its request comes within the shutdown's grace
        idle = min(SHUTDOWN_GRACE, limits.keepalive_timeout) if closing \
            else limits.keepalive_timeout
        self.deadline: float | None = clock() + idle
        self.dkind = D_IDLE
        self.seen = 0  # bytes of the current head (or of pipelined data while answering)
        self.first = b""  # first bytes of the current head, to tell 414/505 from 400
        self.body: RequestBody | None = None
        self.body_status = 0  # status owed because of the body (413, 400, 408), 0 if none
        self.expect = False
        self.continue_sent = False
        self.stalled = False  # reading paused because the body buffer is full
        self.discard = -1  # >= 0 while draining an unread body: bytes still allowed
        self.keep = False  # the request allows keep-alive
        self.t0 = 0.0  # wall-clock and loop time at which the head was complete
        self.m0 = 0.0
        self.eof = False
        self.lost = False
        self.todo = 0

    # -- input -----------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Bytes from the socket (not in the ``TUNNEL`` phase: those are the tunnel's)."""
        ph = self.phase
        if ph == HEAD:
            if not self.seen:
                if self.h2c and data.startswith(H2_PREFACE):
                    # only as the first bytes of a connection, whole in the first read as
                    # clients send it (next_cycle turns h2c off)
                    self.head = HANDED
                    self.phase = STOP
                    self.deadline = None
                    self.todo |= WAKE | H2
                    return
                if (self.reader.fast and len(data) <= self.limits.max_header_bytes
                        and data.find(b"\r\n\r\n") == len(data) - 4
                        and not self.reader.buffered and self._read_whole(data)):
                    return  # the common case: exactly one whole head (fastrequest.py)
                self.first = data
                self.deadline = self.clock() + self.limits.header_timeout
                self.dkind = D_HEAD
            elif len(self.first) <= self.limits.max_request_line and b"\n" not in self.first:
                self.first += data
            self.seen += len(data)
            self.reader.receive_data(data)
            self.pump_head()
        elif ph == BODY:
            self.reader.receive_data(data)
            if self.deadline is not None and self.dkind == D_BODY:
                self.deadline = self.clock() + self.limits.read_timeout
            self.pump_body()
        elif ph == REST:
            self.reader.receive_data(data)
            self.seen += len(data)
            if self.seen > PIPELINE_MAX:
                self.todo |= PAUSE
        # STOP, LINGER: discard

    def receive_eof(self) -> None:
        """The client closed its sending side."""
        self.eof = True
        ph = self.phase
        if ph == HEAD:
            self.reader.receive_data(b"")
            self.pump_head()
        elif ph == BODY:
            self.reader.receive_data(b"")
            self.pump_body()
        elif ph == REST:
            self.reader.receive_data(b"")
        elif ph == LINGER:
            self.todo |= WAKE

    def connection_lost(self) -> None:
        self.lost = True
        self.deadline = None
        body = self.body
        if body is not None and self.phase == BODY:
            body.fail(ClientDisconnected("client closed the connection"))
        if self.head is None:
            self.head = QUIET
        self.todo |= WAKE

    # -- the request head --------------------------------------------------------------------------
    def pump_head(self) -> None:
        """Parse a head if one is complete: :attr:`head` is then set and the task woken."""
        try:
            ev = self.reader.next_event()
        except h11.RemoteProtocolError as exc:
            self._refuse_head(head_error(exc, self.first, self.limits))
            return
        if type(ev) is FastHead or type(ev) is h11.Request:
            self._start_request(ev)
        elif ev is not h11.NEED_DATA:  # ConnectionClosed before any byte of a head
            self.head = QUIET
            self.phase = STOP
            self.todo |= WAKE

    def _refuse_head(self, err: HeadError) -> None:
        self.head = err
        self.phase = STOP
        self.deadline = None
        self.todo |= WAKE

    def _read_whole(self, data: bytes) -> bool:
        """``data``, the first bytes of a head, is exactly one whole head: read it straight
        into a request (:func:`~.fastrequest.read_request`). False when that path declines
        (the bytes then go the general way)."""
        self.t0 = time.time()
        self.m0 = self.clock()
        try:
            got = read_request(data, self.limits, self.port, self.secure, self.client)
        except Exception as exc:
            if not isinstance(exc, HeadError):
                log.exception("error parsing a request head from %s", self.client)
                exc = HeadError(400, "unparsable request head")
            self.seen = len(data)
            self._refuse_head(exc)
            return True
        if got is None:
            return False
        self.deadline = None
        self.seen = len(data)
        self._begin(*got)
        return True

    def _start_request(self, ev: h11.Request | FastHead) -> None:
        self.deadline = None
        self.t0 = time.time()
        self.m0 = self.clock()
        limits = self.limits
        try:
            # h11 bounds only heads that arrive in pieces; one that came whole is measured here
            if self.seen > limits.max_header_bytes and head_size(ev) > limits.max_header_bytes:
                raise HeadError(431, "request head too large")
            req, length, expect, keep = parse_head(ev, limits, self.port, self.secure,
                                                   self.client)
        except Exception as exc:
            if not isinstance(exc, HeadError):
                log.exception("error parsing a request head from %s", self.client)
                exc = HeadError(400, "unparsable request head")
            exc.method, exc.target, exc.version = _event_line(ev)
            self._refuse_head(exc)
            return
        self._begin(req, length, expect, keep)

    def _begin(self, req: Request, length: int | None, expect: bool, keep: bool) -> None:
        """A request is read: hand it to the task, and read its body if it has one."""
        limits = self.limits
        self.first = b""
        self.keep = keep
        self.expect = expect
        self.continue_sent = False
        self.body_status = 0
        self.head = req
        req.link = self.link
        self.todo |= WAKE
        if length == 0:
            self.phase = REST
            self.seen = 0
            self.body = None
        elif length is not None and limits.max_body is not None and length > limits.max_body:
            self.body_status = 413
            self.phase = STOP
            self.body = None
        else:
            req.body = self.body = RequestBody(length, limits.max_body, self.on_body_read)
            self.reader.start_body(length)
            self.phase = BODY
            self.stalled = False
            self.discard = -1
            if not expect:
                self.deadline = self.m0 + limits.read_timeout
                self.dkind = D_BODY
            self.pump_body()

    def refused(self) -> int:
        """The status to answer without calling the application (0: call it): 413 by
        Content-Length, or a body already known to be malformed (a request-smuggling shape,
        nothing to hand over)."""
        if self.phase == STOP and self.body_status in (400, 413) and (
                self.body is None or self.body_status == 400):
            return self.body_status
        return 0

    # -- the request body --------------------------------------------------------------------------
    def pump_body(self) -> None:
        body = self.body
        assert body is not None
        reader = self.reader
        while True:
            discard = self.discard
            if discard < 0 and not body.wants_more():
                self.stalled = True
                self.deadline = None
                self.todo |= PAUSE
                return
            try:
                ev = reader.next_event()
            except h11.RemoteProtocolError as exc:
                if self.eof or self.lost:
                    self.body_failed(ClientDisconnected("client closed the connection"), 0)
                else:
                    self.body_failed(BadRequestBody(f"malformed request body: {exc}"), 400)
                return
            t = type(ev)
            if t is h11.Data:
                if discard >= 0:
                    self.discard = discard - len(ev.data)
                    if self.discard < 0:
                        self.body_failed(None, 0)
                        return
                    continue
                body.feed(bytes(ev.data))
                if body.limit is not None and body.received > body.limit:
                    self.body_failed(None, 413)  # feed() already failed the body: BodyTooLarge
                    return
            elif t is h11.EndOfMessage:
                if discard < 0:
                    body.end()
                self.phase = REST
                self.seen = 0
                self.deadline = None
                self.todo |= WAKE
                return
            else:  # NEED_DATA
                return

    def body_failed(self, exc: BaseException | None, status: int) -> None:
        if exc is not None and self.body is not None:
            self.body.fail(exc)
        if status and not self.body_status:
            self.body_status = status
        self.phase = STOP
        self.deadline = None
        self.todo |= PAUSE | WAKE

    def body_read(self) -> None:
        """The application reads the body: 100-continue is owed now; after back-pressure,
        reading resumes once the body has room."""
        if self.expect and not self.continue_sent:
            self.continue_sent = True
            if self.phase == BODY and not self.lost:
                self.todo |= CONTINUE
                self.deadline = self.clock() + self.limits.read_timeout
                self.dkind = D_BODY
        if self.stalled and self.phase == BODY and self.body is not None \
                and self.body.wants_more():
            self.stalled = False
            self.todo |= UNSTALL

    def unstall(self) -> None:
        if self.phase == BODY and not self.lost:
            if not self.expect or self.continue_sent:
                self.deadline = self.clock() + self.limits.read_timeout
                self.dkind = D_BODY
            self.todo |= RESUME
            self.pump_body()

    # -- after the response ----------------------------------------------------------------------
    def can_keep(self) -> bool:
        """Whether the rest of an unread request body can be drained after the response."""
        ph = self.phase
        if ph == REST:
            return True
        if ph != BODY or (self.expect and not self.continue_sent):
            return False
        body = self.body
        return body is not None and (body.length is None
                                     or body.length - body.received <= DRAIN_MAX)

    def start_drain(self) -> bool:
        """Read and discard what is left of the body (bounded): True while some is missing
        (the task waits for WAKE, then calls :meth:`end_drain`)."""
        if self.phase != BODY:
            return False
        self.discard = DRAIN_MAX
        self.stalled = False
        self.deadline = self.clock() + min(DRAIN_TIME, self.limits.read_timeout)
        self.dkind = D_DRAIN
        self.todo |= RESUME
        self.pump_body()
        return self.phase == BODY

    def end_drain(self) -> bool:
        """Whether the whole body came: the connection can take the next request."""
        self.discard = -1
        return self.phase == REST

    def next_cycle(self, limits: Limits) -> None:
        """The exchange is over and the connection stays: read the next head, with ``limits``
        (those in force now: a reload may have changed them). Reading resumes if it was
        paused (the adapter knows)."""
        self.h2c = False
        self.limits = limits
        reader = self.reader
        reader.start_next_cycle(limits.max_header_bytes)
        self.phase = HEAD
        self.body = None
        self.seen = 0
        self.t0 = 0.0
        pending = reader.buffered
        if pending:  # pipelined bytes: the next head has started
            self.seen = pending
            self.first = reader.peek(max(limits.max_request_line, 8192) + 2)
            self.deadline = self.clock() + limits.header_timeout
            self.dkind = D_HEAD

    def idle(self) -> None:
        """The task waits for a head and none has started: the keep-alive deadline runs."""
        if not self.seen:
            self.deadline = self.clock() + self.limits.keepalive_timeout
            self.dkind = D_IDLE

    def start_linger(self) -> None:
        """Half-closed after the last answer: discard input until the client's FIN, bounded."""
        self.phase = LINGER
        self.deadline = self.clock() + LINGER_TIME
        self.dkind = D_LINGER
        self.todo |= RESUME

    def start_tunnel(self) -> bytes:
        """After a 101: input is the tunnel's; returns what the client sent after its request."""
        self.phase = TUNNEL
        self.deadline = None
        self.todo |= RESUME
        return self.reader.take_buffered()

    # -- time and shutdown -------------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Act on the read deadline if it has passed."""
        d = self.deadline
        if d is None or now < d:
            return
        self.deadline = None
        kind = self.dkind
        if kind == D_IDLE or kind == D_HEAD:
            if self.phase == HEAD and self.head is None:
                if kind == D_IDLE or not self.seen:
                    self.head = QUIET
                else:
                    self.head = HeadError(408, "request head not received in time")
                self.phase = STOP
                self.todo |= WAKE
        elif kind == D_BODY:
            if self.phase == BODY:
                self.body_failed(RequestTimeout("request body timed out"), 408)
        elif kind == D_DRAIN:
            if self.phase == BODY:
                self.body_failed(None, 0)
        else:  # D_LINGER
            self.todo |= WAKE

    def shutdown(self) -> None:
        """Server shutdown: the current response ends the connection; an idle one closes after
        :data:`SHUTDOWN_GRACE`, in case a request is already on its way (a connection the
        kernel accepted just before the listener closed, or a client reusing a keep-alive
        connection), and is then answered with ``Connection: close``. Closing it at once
        would reset a request the client had every reason to send."""
        if self.phase == HEAD and self.head is None:
            if not self.seen and self.dkind == D_IDLE and not self.eof:
                grace = self.clock() + SHUTDOWN_GRACE
                self.deadline = grace if self.deadline is None else min(self.deadline, grace)
                return
            self.head = QUIET
            self.phase = STOP
            self.todo |= WAKE
        elif self.discard >= 0:
            self.body_failed(None, 0)  # stop draining


def head_error(exc: h11.RemoteProtocolError, first: bytes, limits: Limits) -> HeadError:
    err = HeadError(error_status(exc, first, limits), str(exc))
    line = first.split(b"\n", 1)[0].rstrip(b"\r")[:8192]
    parts = line.split(b" ")
    if len(parts) == 3:  # for the access log only
        method, target, version = (p.decode("latin-1") for p in parts)
        err.method, err.target = method, target
        err.version = version[5:] if version.startswith("HTTP/") else None
    return err


def _event_line(ev: h11.Request | FastHead) -> tuple[str, str, str]:
    return (ev.method.decode("latin-1"), ev.target.decode("latin-1"),
            ev.http_version.decode("latin-1"))
