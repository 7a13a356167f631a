"""The ``<revproxy>`` step: match, pick a destination, forward, stream the answer back.

Both bodies stream: the request body is read from the client as the backend takes it
(``Content-Length`` when the client gave one, chunked otherwise), the response body is handed
to the connection layer as it arrives, with the read of the next piece waiting for the client
to take the last one. Nothing holds a whole body in memory: a chunked request body that must
reach the backend with a length (``requestbuffer``, or a backend seen speaking HTTP/1.0) is
spooled by :mod:`.buffering`, to a temporary file past a small size.

Failures and what the client gets:

- cannot connect (refused, unreachable, DNS, TLS handshake): the next destination, else 502;
- connecting or the first response byte takes too long: 504;
- the connection dies before any response byte: an idempotent request without a body is sent
  once more on a new connection (a pooled connection the backend closed is the usual cause);
  otherwise 502;
- the backend dies, stalls or breaks the protocol mid-body: the client connection is aborted
  (:class:`ocsi.BodyAborted`), never ended as if the body were whole.
- the head to write breaks the rules of a request head (a step before the proxy changed the
  method, the target or a field so): 502, and nothing is written.

Each is logged once with the destination.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import TYPE_CHECKING, Any

import h11
from ocsi import (
    DO_NOTHING,
    BodyAborted,
    BytesBody,
    Found,
    Headers,
    Request,
    Response,
    Serve,
    Step,
    StreamBody,
    error_response,
    url_subject,
)
from ocsi.client import ResponseHead, header_fields

from .balance import Balancer
from .counters import ANSWERS, CLASSES, ERRORS, LATENCY
from .counters import live as _LIVE
from .buffering import DEFAULT_LIMIT, BodyTooLarge, SpooledBody, buffer_body
from .client import ClientGone, Pool, UnwritableHead, UpstreamClosed, UpstreamConnection
from .destination import Destination, DestinationError
from .headers import (relayed_headers, request_headers, response_headers, trailer_fields,
                      wants_websocket)
from .options import ProxyOptions
from .relay import stop as _stop
from .relay import switched
from .redirects import rewrite_redirects
from .rules import Rule

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from ocsi import Answer, State

log = logging.getLogger("ocsi.ext.revproxy")

#: Methods that may be sent twice (RFC 9110 §9.2.2) when a reused connection turns out dead.
IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))
_CONNECT_ERRORS = (OSError, ssl.SSLError, asyncio.TimeoutError)


#: Responses up to this size (with a Content-Length) are read whole, then sent.
SMALL_BODY = 64 * 1024


class _NoResponse(Exception):
    """The exchange ended before the backend sent a byte of its answer."""


class _Timeout(Exception):
    pass


class RevProxy(Step):
    """Forwards the requests its rule matches (see :mod:`ocsi_ext_revproxy.rules`)."""

    #: Per destination (as written): answers by status class, failures, response-head time.
    _counts: list[tuple[list[Any], Any, Any]]

    def __init__(self, rule: Rule, options: ProxyOptions | None = None, where: str = "?") -> None:
        self.rule = rule
        self.options = options if options is not None else ProxyOptions()
        self.where = where
        self.balancer = Balancer(len(rule.dests), rule.balance, rule.fail_timeout)
        self._tls: ssl.SSLContext | None = None
        self._counts = [([ANSWERS.labels(t.text, c) for c in CLASSES], ERRORS.labels(t.text),
                         LATENCY.labels(t.text)) for t in rule.dests]
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"<RevProxy {' '.join(t.text for t in self.rule.dests)}>"

    async def cleanup(self) -> None:
        self.options.close()

    @property
    def pool(self) -> Pool:
        return self.options.pool

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self.rule.tls.context()
        return self._tls

    # -- matching ------------------------------------------------------------------------------
    def subject(self, request: Request) -> str | None:
        """What the rule's regular expression is matched against (``None``: not concerned)."""
        return url_subject(request, self.rule.full_url)

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        subject = self.subject(request)
        if subject is None:
            return DO_NOTHING
        match = self.rule.regex.fullmatch(subject)
        if match is None:
            return DO_NOTHING
        try:
            dests = self.rule.expand(match)
        except DestinationError as exc:
            log.error("%s: %s", self.where, exc)
            return Serve(error_response(500))
        if request.body.length is not None:  # nothing to buffer: what forward() would do
            return Serve(await self._forward(request, dests, None))
        return Serve(await self.forward(request, dests))

    # -- forwarding ----------------------------------------------------------------------------
    async def forward(self, request: Request, dests: list[Destination]) -> Response:
        """The backend's response, or the 411/413/502/504 that stands for it."""
        spool = None
        if request.body.length is None:
            limit = self._buffer_limit(dests)
            if limit == 0:
                return error_response(411)  # an HTTP/1.0 backend, and buffering refused
            if limit is not None:
                try:
                    spool = await buffer_body(request, limit)
                except BodyTooLarge:
                    log.warning("%s: a chunked request body over requestbuffer (%d bytes): 413",
                                self.where, limit)
                    return error_response(413)
        try:
            return await self._forward(request, dests, spool)
        finally:
            if spool is not None and not spool.started:
                spool.close()

    def _buffer_limit(self, dests: list[Destination]) -> int | None:
        """How much of a chunked body to buffer (``None``: stream it chunked; 0: refuse)."""
        configured = self.rule.request_buffer
        if configured:
            return configured
        if not any(d.origin in self.options.http10 for d in dests):
            return None
        return 0 if configured == 0 else DEFAULT_LIMIT

    async def _forward(self, request: Request, dests: list[Destination],
                       spool: SpooledBody | None) -> Response:
        body_length = request.body.length if spool is None else spool.size
        replayable = request.method in IDEMPOTENT and body_length == 0
        failure = "no destination"
        pool = self.options.pool
        for index in self.balancer.order():
            dest = dests[index]
            for attempt in (0, 1):
                conn = pool.take(dest.origin, self.rule.tls) \
                    if self.rule.pipeline and attempt == 0 else None
                reused = conn is not None
                if conn is None:
                    try:
                        conn = await pool.connect(
                            dest.origin, self._tls_context() if dest.origin.secure else None,
                            self.rule.tls, self.rule.connect_timeout)
                    except asyncio.TimeoutError:
                        self.balancer.failed(index)
                        self._counts[index][1].value += 1
                        log.error("%s: connecting to %s timed out", self.where, dest.origin)
                        failure = "timeout"
                        break
                    except _CONNECT_ERRORS as exc:
                        self.balancer.failed(index)
                        self._counts[index][1].value += 1
                        log.error("%s: cannot connect to %s: %s", self.where, dest.origin,
                                  _reason(exc))
                        failure = "connect"
                        break
                self.balancer.active[index] += 1  # until the body is done (see _exchange)
                asked = time.monotonic()
                try:
                    response = await self._exchange(conn, request, dest, index, spool)
                except _NoResponse as exc:
                    self.balancer.active[index] -= 1
                    conn.close()
                    if reused and replayable:
                        continue  # a pooled connection the backend had closed: once more
                    self.balancer.failed(index)
                    self._counts[index][1].value += 1
                    log.error("%s: %s %s: %s", self.where, dest.origin, dest.target, exc)
                    if not replayable:
                        return error_response(502)
                    failure = "reset"
                    break
                except ClientGone:
                    self.balancer.active[index] -= 1
                    conn.close()  # the backend sees the request abandoned, as from nginx
                    log.info("%s: the client left before %s answered %s %s", self.where,
                             dest.origin, request.method, dest.target)
                    return Response(499, [], BytesBody(b""), reason="Client Closed Request")
                except UnwritableHead as exc:
                    self.balancer.active[index] -= 1
                    pool.release(conn)  # nothing was written on it
                    self._counts[index][1].value += 1
                    log.error("%s: refused to write the request to %s: %s", self.where,
                              dest.origin, exc)
                    return error_response(502)
                except _Timeout:
                    self.balancer.active[index] -= 1
                    conn.close()
                    self._counts[index][1].value += 1
                    log.error("%s: %s did not answer %s %s within %g s", self.where, dest.origin,
                              request.method, dest.target, self.rule.response_timeout)
                    return error_response(504)
                except BaseException:
                    self.balancer.active[index] -= 1
                    conn.close()
                    raise
                self.balancer.succeeded(index)
                answers, _, latency = self._counts[index]
                answers[min(max(response.status // 100, 1), 5) - 1].value += 1
                latency.observe(time.monotonic() - asked)
                return response
        return error_response(504 if failure == "timeout" else 502)

    async def _exchange(self, conn: UpstreamConnection, request: Request, dest: Destination,
                        index: int, spool: SpooledBody | None = None) -> Response:
        rule = self.rule
        length = request.body.length if spool is None else spool.size
        websocket = wants_websocket(request)
        headers = request_headers(request, dest.origin.authority, rule.keephost, rule.forwarded,
                                  length, websocket)
        sender: asyncio.Task[None] | None = None
        try:
            conn.start(request.method, dest.target, headers)
            if length != 0:
                sender = asyncio.get_running_loop().create_task(
                    _send_body(conn, request) if spool is None else _send_spooled(conn, spool))
            if sender is None:
                # _final_head's loop, without a coroutine of its own for the usual answer
                gone = None if request.link is None else (lambda: request.client_gone)
                head = await conn.next_event(rule.response_timeout, gone)
                if type(head) is not ResponseHead and type(head) is not h11.Response and not (
                        websocket and type(head) is h11.InformationalResponse
                        and head.status_code == 101):
                    head = await _final_head(conn, rule.response_timeout, websocket, request)
            else:
                head = await self._response_head(conn, sender, request, websocket)
        except asyncio.TimeoutError:
            await _stop(sender)
            raise _Timeout() from None
        except (UpstreamClosed, ConnectionError, OSError) as exc:
            await _stop(sender)
            raise _NoResponse(_reason(exc)) from None
        except BaseException:
            await _stop(sender)
            raise
        if type(head) is h11.InformationalResponse:  # 101 to a WebSocket handshake
            return switched(conn, head, f"{self.where}: {dest.origin}{dest.target}",
                            self.rule.websocket_max_message)
        status = head.status_code
        if head.http_version == b"1.0":
            self.options.http10.add(dest.origin)
        if type(head) is ResponseHead:
            fields, upstream_length = relayed_headers(head)
        else:
            fields, upstream_length = response_headers(conn.fields)
        if rule.rewrite_location:
            fields = rewrite_redirects(fields, dest, request)
        no_body = request.method == "HEAD" or status in (204, 304)
        if status == 304 and upstream_length is not None:
            fields.append(("content-length", str(upstream_length)))
        if sender is None and conn.framing[0] == "length" and conn.framing[1] <= SMALL_BODY:
            # nothing follows the head (HEAD, 204, 304, a length of 0), or a small answer read
            # whole before it is passed on: the backend connection goes back to the pool at
            # once, and the client gets one write (bounded by SMALL_BODY). The body usually
            # came in the same read as the head: no event, generator or task for it.
            try:
                body = conn.take_whole()  # usually there already, with the head
                if body is None:
                    body = await conn.whole_body(rule.idle_timeout)
            except asyncio.TimeoutError:
                self._done(conn, index, False)
                log.error("%s: %s stopped sending the body of %s for %g s", self.where,
                          dest.origin, dest.target, rule.idle_timeout)
                return error_response(502)  # nothing was sent yet: a clean answer is possible
            except (UpstreamClosed, ConnectionError, OSError) as exc:
                self._done(conn, index, False)
                log.error("%s: %s %s: %s in the middle of the body", self.where, dest.origin,
                          dest.target, _reason(exc))
                return error_response(502)
            self._done(conn, index, True)
            if no_body:
                return Response(status, Headers.from_lower(fields), StreamBody(
                    _empty(), upstream_length if request.method == "HEAD" else None))
            return Response(status, Headers.from_lower(fields), BytesBody(body),
                            reason=head.reason.decode("latin-1") or None)
        return await self._streamed(conn, head, fields, upstream_length, no_body, request,
                                    dest, index, sender)

    def _done(self, conn: UpstreamConnection, index: int, clean: bool) -> None:
        """An exchange without a body going up is over: the connection back to the pool when
        it ended cleanly and can carry another, else closed."""
        self.balancer.active[index] -= 1
        if clean and self.rule.pipeline:
            self.options.pool.release(conn)  # which closes it when it cannot carry another
        else:
            conn.close()

    async def _streamed(self, conn: UpstreamConnection, head: Any,
                        fields: list[tuple[str, str]], upstream_length: int | None,
                        no_body: bool, request: Request, dest: Destination, index: int,
                        sender: asyncio.Task[None] | None) -> Response:
        """The answer whose body is relayed as it comes (or read through events: a request
        body still going up, a chunked or close-delimited body)."""
        rule = self.rule
        status = head.status_code
        finished = False
        streamed: StreamBody | None = None  # the body chunks() feeds, once made

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal finished
            try:
                while True:
                    event = await conn.next_event(rule.idle_timeout)
                    if type(event) is h11.Data:
                        yield bytes(event.data)
                    elif type(event) is h11.EndOfMessage:
                        finished = True
                        if event.headers and streamed is not None:  # trailers, relayed
                            streamed.trailers = trailer_fields(header_fields(event.headers))
                        return
            except asyncio.TimeoutError:
                raise BodyAborted(f"{dest.origin} stopped sending the body of {dest.target} "
                                  f"for {rule.idle_timeout:g} s") from None
            except (UpstreamClosed, ConnectionError, OSError) as exc:
                raise BodyAborted(f"{dest.origin} {dest.target}: {_reason(exc)} "
                                  "in the middle of the body") from None

        async def close() -> None:
            self.balancer.active[index] -= 1
            clean = finished and (sender is None or (sender.done() and not sender.cancelled()
                                                     and sender.exception() is None))
            await _stop(sender)
            if clean and rule.pipeline and conn.reusable():
                self.pool.release(conn)
            else:
                conn.close()

        if no_body:
            # nothing follows the head: the exchange is over now (h11 knows HEAD, 204, 304)
            try:
                async for _ in chunks():
                    pass
            except BodyAborted:
                pass
            await close()
            return Response(status, Headers.from_lower(fields),
                            StreamBody(_empty(), upstream_length if request.method == "HEAD" else None))
        if upstream_length is not None and upstream_length <= SMALL_BODY and sender is None:
            # a small answer is read whole before it is passed on: the backend connection goes
            # back to the pool at once, and the client gets one write (bounded by SMALL_BODY)
            try:
                parts = [chunk async for chunk in chunks()]
            except BodyAborted as exc:
                await close()
                log.error("%s: %s", self.where, exc)
                return error_response(502)  # nothing was sent yet: a clean answer is possible
            await close()
            return Response(status, Headers.from_lower(fields), BytesBody(b"".join(parts)),
                            reason=_reason_phrase(head))
        streamed = StreamBody(chunks(), upstream_length, close)
        return Response(status, Headers.from_lower(fields), streamed, reason=_reason_phrase(head))

    async def _response_head(self, conn: UpstreamConnection, sender: asyncio.Task[None] | None,
                             request: Request, websocket: bool = False
                             ) -> ResponseHead | h11.Response | h11.InformationalResponse:
        """The backend's final response head (1xx skipped, but a 101 to a WebSocket
        handshake), while the body goes up."""
        timeout = self.rule.response_timeout
        reader = asyncio.ensure_future(_final_head(conn, timeout, websocket, request))
        try:
            if sender is not None:
                done, _ = await asyncio.wait({reader, sender}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if sender in done and sender.exception() is not None:
                    exc = sender.exception()
                    if exc is not None and not isinstance(exc, (ConnectionError, OSError)):  # the client's doing
                        raise exc
                    # the backend stopped reading the body: it may have answered already
            return await reader
        except asyncio.TimeoutError:
            raise _Timeout() from None
        finally:
            if not reader.done():
                reader.cancel()


def _client_gone(request: Request) -> Callable[[], bool] | None:
    """What tells the client went away while the backend has not answered (nothing to tell
    it for a request without a connection of its own)."""
    if request.link is None:
        return None
    return lambda: request.client_gone


async def _final_head(conn: UpstreamConnection, timeout: float, websocket: bool,
                      request: Request
                      ) -> ResponseHead | h11.Response | h11.InformationalResponse:
    gone = _client_gone(request)
    while True:
        event = await conn.next_event(timeout, gone)
        if type(event) is ResponseHead or type(event) is h11.Response:
            return event
        if websocket and type(event) is h11.InformationalResponse and event.status_code == 101:
            return event  # the switch, for the caller
        # other InformationalResponse (100, 102, 103): not relayed


async def _send_body(conn: UpstreamConnection, request: Request) -> None:
    if request.body.length is None:  # chunked to the backend too
        async for chunk in request.body:
            await conn.send_chunk(chunk)
        conn.end_chunks()
        return
    async for chunk in request.body:
        conn.write(chunk)
        await conn.drain()


async def _send_spooled(conn: UpstreamConnection, spool: SpooledBody) -> None:
    """A buffered body, announced with its Content-Length; the spool is closed after."""
    try:
        async for piece in spool.pieces():
            conn.write(piece)
            await conn.drain()
    finally:
        spool.close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text


def _reason_phrase(head: ResponseHead | h11.Response | h11.InformationalResponse) -> str | None:
    reason = head.reason.decode("latin-1")
    return reason or None
