"""h11's request parser, driven without h11's connection state machine.

h11 parses everything ocsi reads: request lines, header fields (with its validation: Host
rules, conflicting ``Content-Length``, transfer codings other than ``chunked``), chunked and
``Content-Length`` bodies. What ``h11.Connection`` adds around its parsers is a client/server
state machine (keep-alive, protocol switches, 100-continue bookkeeping) that ocsi does not use:
responses are written by :mod:`.wire`, keep-alive and ``Expect`` are decided in
:mod:`.incoming`. That machinery, and building a fresh ``Connection`` for each request, cost
more than the parsing itself (≈14 of ≈24 µs per request head on the reference machine).

So each connection keeps one :class:`RequestReader`: one h11 receive buffer for the life of the
socket (pipelined bytes simply stay in it) and the h11 reader for the current part of the
message. :meth:`RequestReader.next_event` reproduces what ``Connection.next_event`` does around
its readers: the bound on an incomplete event (431), end of input inside a message (an error),
a clean end of input between messages (``ConnectionClosed``), and every parse error raised as
``h11.RemoteProtocolError``.

The readers and the buffer are h11 internals (``h11._readers``, ``h11._receivebuffer``), with
the same shape from h11 0.12 to 0.16; the tests drive them through real sockets, so a changed
h11 shows up there.

Private: not part of the extension API.
"""

from __future__ import annotations

from typing import Any

import h11
from h11._readers import READERS, maybe_read_from_IDLE_client
from h11._receivebuffer import ReceiveBuffer

from .fasthead import AVAILABLE as FAST_AVAILABLE
from .fasthead import default_parser, parse_canonical_head
from .responsehead import ResponseHead, parse_response_head

__all__ = ["RequestReader", "ResponseReader"]

_BODY_READERS = READERS[h11.SEND_BODY]
_chunked_reader = _BODY_READERS["chunked"]  # type: ignore[index]  # h11 types the table loosely
_length_reader = _BODY_READERS["content-length"]  # type: ignore[index]  # h11 types the table loosely
_close_reader = _BODY_READERS["http/1.0"]  # type: ignore[index]  # h11 types the table loosely
_response_head = READERS[(h11.SERVER, h11.SEND_RESPONSE)]
_nothing = READERS[(h11.SERVER, h11.DONE)]
_NEED_DATA = h11.NEED_DATA
_CLOSED = h11.ConnectionClosed()


class _Reader:
    """One receive buffer for the life of a socket, and the h11 reader for what comes next."""

    __slots__ = ("_buf", "_closed", "_max", "_read", "_scanned")

    def __init__(self, reader: Any, max_incomplete_event_size: int) -> None:
        self._buf = ReceiveBuffer()
        self._closed = False
        self._read = reader
        self._max = max_incomplete_event_size
        #: Bytes of the buffer already searched for the end of a head (the fast path): a head
        #: arriving a byte at a time is not searched again from its start on every byte.
        self._scanned = 0

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the socket; ``b""`` means the peer closed its side."""
        if data:
            if not self._closed:  # bytes after EOF cannot happen with a real socket: ignore
                self._buf += data
        else:
            self._closed = True

    @property
    def closed(self) -> bool:
        """The peer has closed its side (what is buffered may still be read)."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes received and not parsed yet (pipelined requests)."""
        return len(self._buf._data)  # noqa: SLF001 - as above; its __len__ is a Python call

    def peek(self, n: int) -> bytes:
        """The first ``n`` unparsed bytes (rare: only when requests are pipelined)."""
        return bytes(self._buf)[:n]

    def take_buffered(self) -> bytes:
        """Every unparsed byte, removed (a connection switching protocols hands them on)."""
        data = bytes(self._buf)
        self._buf = ReceiveBuffer()
        return data

    def _fast_head(self, parse: Any) -> Any:
        """A complete head in the buffer read by ``parse`` (the httptools fast path), taken
        out of the buffer; ``None`` when there is none yet or ``parse`` declines it (h11 then
        reads it, the bytes untouched)."""
        data = self._buf._data  # noqa: SLF001 - h11's buffer, as above
        start = self._scanned - 3 if 3 <= self._scanned <= len(data) else 0
        end = data.find(b"\r\n\r\n", start)
        if end < 0:
            self._scanned = len(data)
            return None
        if end + 4 > self._max:
            return None
        head = parse(bytes(data[:end + 4]))
        if head is not None:
            self._drop(end + 4)
            self._scanned = 0
        return head

    def _drop(self, count: int) -> None:
        """Remove the first ``count`` bytes, as h11's own extraction does (without copying
        them out again)."""
        buf = self._buf
        del buf._data[:count]  # noqa: SLF001 - h11's buffer, as above
        buf._next_line_search = 0  # noqa: SLF001
        buf._multiple_lines_search = 0  # noqa: SLF001

    def next_event(self) -> Any:
        """The next event; ``h11.NEED_DATA`` when more bytes are needed;
        ``h11.ConnectionClosed`` at a clean end of input between messages. Raises
        ``h11.RemoteProtocolError`` for anything malformed or cut short."""
        buf = self._buf
        try:
            event = self._read(buf)
        except h11.LocalProtocolError as exc:
            raise h11.RemoteProtocolError(str(exc), error_status_hint=exc.error_status_hint) \
                from None
        if event is not None:
            return event
        if not buf:
            if self._closed:
                eof = getattr(self._read, "read_eof", None)
                if eof is not None:
                    # a body reader: EndOfMessage for a close-delimited body, else it raises
                    return eof() or _CLOSED
                return _CLOSED
            return _NEED_DATA
        # same order of checks as h11.Connection.next_event
        if len(buf) > self._max:
            raise h11.RemoteProtocolError("Receive buffer too long", error_status_hint=431)
        if self._closed:
            raise h11.RemoteProtocolError("peer unexpectedly closed connection")
        return _NEED_DATA


class RequestReader(_Reader):
    """Reads requests from one connection: a head, then (optionally) its body, then the next.

    Events: ``h11.Request`` (or a :class:`~.fasthead.FastHead` with ``fast``), ``h11.Data``,
    ``h11.EndOfMessage``. ``fast``: a complete canonical head is read by httptools; anything
    else, and every body, by h11 (:mod:`.fasthead`)."""

    __slots__ = ("_fast",)

    def __init__(self, max_incomplete_event_size: int, fast: bool = False) -> None:
        super().__init__(maybe_read_from_IDLE_client, max_incomplete_event_size)
        self._fast = fast and FAST_AVAILABLE

    @property
    def fast(self) -> bool:
        """Whether canonical heads are read by httptools (``<httpparser>httptools``)."""
        return self._fast

    def next_event(self) -> Any:
        if self._fast and self._read is maybe_read_from_IDLE_client:
            head = self._fast_head(parse_canonical_head)
            if head is not None:
                return head
        return super().next_event()

    def start_body(self, length: int | None) -> None:
        """After a head: read a body of ``length`` bytes, or a chunked one (``None``)."""
        self._read = _chunked_reader() if length is None else _length_reader(length)

    def start_next_cycle(self, max_incomplete_event_size: int) -> None:
        """The request is over: read the next head (with the limits now in force)."""
        self._read = maybe_read_from_IDLE_client
        self._max = max_incomplete_event_size
        self._scanned = 0


class ResponseReader(_Reader):
    """h11's response parser for the client side of a connection (a proxy's backend), driven
    the same way as :class:`RequestReader`: h11's readers for the status line, headers and
    body framing, no ``h11.Connection``.

    Per response: :meth:`start_response`, then :meth:`next_event` until an ``h11.Response``
    (``InformationalResponse`` for 1xx), then :meth:`start_body` with the framing the caller
    decided (:func:`response_framing`), then events until ``h11.EndOfMessage``. Shortcuts for
    the usual exchange: :meth:`read_head` before :meth:`next_event` (a
    :class:`~.responsehead.ResponseHead`), :meth:`take_body` for a body already whole.
    """

    __slots__ = ("_fast",)

    def __init__(self, max_head: int = 64 * 1024, fast: bool | None = None) -> None:
        super().__init__(_nothing, max_head)
        #: Canonical heads of final responses read in one pass by :meth:`read_head` (``None``:
        #: as the server's default parser, :func:`~.fasthead.default_parser`), the rest by h11.
        self._fast = (default_parser() == "httptools") if fast is None else (fast and FAST_AVAILABLE)

    def start_response(self) -> None:
        self._read = _response_head
        self._scanned = 0

    @property
    def fast(self) -> bool:
        """Whether canonical heads are read by httptools (``<httpparser>httptools``)."""
        return self._fast

    def read_head(self) -> ResponseHead | None:
        """The final response head when a canonical one is complete in the buffer, taken out
        of it (:mod:`.responsehead`: its fields already as text, its framing fields read), else
        ``None`` and the bytes untouched: :meth:`next_event` then reads what is there (a 1xx,
        a head not whole yet, anything h11 must judge). Only while a head is awaited, and only
        with the fast path on; a proxy tries it first, for the usual head."""
        if self._fast and self._read is _response_head:
            return self._fast_head(parse_response_head)  # type: ignore[no-any-return]
        return None

    def take_body(self, length: int) -> bytes | None:
        """After a head: its whole body of ``length`` bytes when all of it is buffered, taken
        out at once (the response is then over, without ``Data`` and ``EndOfMessage`` events;
        bytes after it stay buffered), else ``None``, nothing taken."""
        data = self._buf._data  # noqa: SLF001 - h11's buffer, as above
        have = len(data)
        if have < length:
            return None
        body = bytes(data) if have == length else bytes(data[:length])
        if length:
            self._drop(length)
        self._read = _nothing
        return body

    def start_body(self, framing: str, length: int = 0) -> None:
        """``framing``: ``"length"`` (``length`` bytes; 0 for none), ``"chunked"`` or ``"close"``."""
        if framing == "length":
            self._read = _length_reader(length)
        elif framing == "chunked":
            self._read = _chunked_reader()
        else:
            self._read = _close_reader()


def header_fields(headers: Any) -> list[tuple[str, str]]:
    """h11's validated header list as ``(lower-case name, value)`` text pairs, read in one go
    (iterating h11's ``Headers`` costs a Python call per field)."""
    full = getattr(headers, "_full_items", None)
    if full is None:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    return [(n.decode("latin-1"), v.decode("latin-1")) for _, n, v in full]


def response_framing(method: str, status: int, fields: list[tuple[str, str]]) -> tuple[str, int]:
    """How the body of a response to ``method`` is delimited (RFC 9112 §6.3), from its fields
    (:func:`header_fields`): ``("length", n)``, ``("chunked", 0)`` or ``("close", 0)``."""
    if status in (204, 304) or method == "HEAD" or status < 200:
        return "length", 0
    length = None
    for name, value in fields:
        if name == "transfer-encoding":
            if value.strip().lower() != "chunked":
                raise h11.RemoteProtocolError(f"unsupported Transfer-Encoding {value!r}")
            return "chunked", 0
        if name == "content-length":
            length = int(value)
    if length is not None:
        return "length", length
    return "close", 0
