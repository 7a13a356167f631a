"""A response's HEADERS and DATA frames, built here; the states and windows are still jh2's.

jh2's ``send_headers`` and ``send_data`` wrap four state transitions, two window updates and two
frame headers in about 360 lines of Python per response (frame objects and flag sets, a scan of
the header list for an informational status and another for ``:method``, header validation flags
that the connection's configuration then ignores): a third of what jh2 costs a stream. For what
a server sends most, :func:`send_headers`, :func:`send_data` and :func:`send_answer` (the two
at once) do the same thing directly:

- the connection's and the stream's state machines (jh2's own objects) take the same inputs in
  the same order, so a send the protocol forbids raises jh2's error and leaves the states as
  jh2's methods would;
- the flow-control windows shrink by the same amounts, and DATA that does not fit them, or the
  peer's frame size, goes to jh2's ``send_data``, which refuses it as before;
- the header block comes from the connection's own HPACK encoder (its dynamic table and any
  pending table size update stay in step), split into CONTINUATION frames at the stream's
  maximum frame size as jh2 does;
- the frames are appended to the connection's outbound buffer, after whatever jh2 queued first.

A stream jh2 no longer holds, a second header block (trailers, or the final block after an
informational one), a 1xx status, or a connection that is not jh2's (h2, the fallback) goes through jh2's or h2's
public methods. ``tests/unit/test_h2send.py`` holds the two ways side by side: same bytes, same
states, same windows. :func:`response_block` makes the field block in the encoder's form.

Private: not part of the extension API.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .dates import http_date_now
from .wire import _NOT_MULTIPLEXED, NO_BODY

__all__ = ["response_block", "send_answer", "send_data", "send_headers", "usable", "window"]

_JH2Connection: Any = None
ConnectionInputs: Any = None
StreamInputs: Any = None
ALTERNATIVE_HPACK = False
if not TYPE_CHECKING:  # jh2 is untyped: the connection is handled as ``Any`` here
    try:
        from jh2.connection import ConnectionInputs
        from jh2.connection import H2Connection as _JH2Connection
        from jh2.stream import ALTERNATIVE_HPACK, StreamInputs
    except ImportError:  # h2 only: every frame through its public methods
        pass

#: A frame header: length (24 bits, written as 16 + 8), type, flags, stream id (RFC 9113 §4.1).
_HEADER = struct.Struct(">HBBBL")
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4


#: A field of a header block as the compiled encoder takes it: name, value, never indexed.
Field = tuple[bytes, bytes, bool]
#: Response fields met before, ready for the encoder: most repeat from one answer to the next
#: (``content-type``, ``accept-ranges``, a file's ``etag`` and ``last-modified``). Bounded:
#: emptied when full, long values never kept; ``date`` and ``server`` are never kept, since
#: whether the answer has its own is looked for.
_FIELDS: dict[tuple[str, str], Field] = {}
_FIELDS_MAX = 1024
_FIELD_VALUE_MAX = 256
_STATUS: dict[int, Field] = {}
_date: list[Any] = [None, None]  # the last ``date`` value and its field


def response_block(status: int, headers: Iterable[tuple[str, str]], body_length: int | None,
                   head_only: bool, server: bytes) -> tuple[list[Field], bool]:
    """:func:`.wire.field_block` (the same fields, rules and errors) with each field ready for
    the encoder, and fields met before taken from a table instead of checked and encoded again.
    ``tests/unit/test_h2send.py`` holds the two side by side."""
    field = _STATUS.get(status)
    if field is None:
        field = _STATUS[status] = (b":status", str(status).encode(), False)
    block = [field]
    known = _FIELDS
    has_date = has_server = False
    for item in headers:
        field = known.get(item)
        if field is not None:
            block.append(field)
            continue
        name, value = item
        if name in _NOT_MULTIPLEXED:
            continue
        if "\n" in value or "\r" in value or "\0" in value:
            raise ValueError(f"CR, LF or NUL in the value of header {name!r}")
        field = (name.encode("latin-1"), value.encode("latin-1"), False)
        if name == "date":
            has_date = True
        elif name == "server":
            has_server = True
        elif len(value) <= _FIELD_VALUE_MAX:  # the two above are looked for: never kept
            if len(known) >= _FIELDS_MAX:
                known.clear()
            known[item] = field
        block.append(field)
    if not has_server:
        block.append((b"server", server, False))
    if not has_date:
        now = http_date_now()
        if now != _date[0]:
            _date[:] = [now, (b"date", now.encode(), False)]
        block.append(_date[1])
    if isinstance(body_length, int) and status not in NO_BODY:
        block.append((b"content-length", str(body_length).encode(), False))
    return block, head_only or status in NO_BODY


def usable(conn: Any) -> bool:
    """Whether ``conn`` is a jh2 connection with the compiled HPACK encoder these functions
    drive (the ``fast`` extra); otherwise the caller keeps to the public methods."""
    return (ALTERNATIVE_HPACK and _JH2Connection is not None
            and type(conn) is _JH2Connection and isinstance(conn._data_to_send, bytearray))


def send_headers(conn: Any, sid: int, block: list[Field], end_stream: bool) -> None:
    """``conn.send_headers(sid, block, end_stream=end_stream)`` for a server's first, final
    header block; ``conn`` must be :func:`usable`."""
    stream = conn.streams.get(sid)
    machine = stream.state_machine if stream is not None else None
    if machine is None or machine.headers_sent or block[0][1][:1] == b"1":
        conn.send_headers(sid, [(n, v) for n, v, _ in block], end_stream=end_stream)
        return
    _headers(conn, stream, machine, sid, block, end_stream)


def send_answer(conn: Any, sid: int, block: list[Field], data: bytes) -> bool:
    """``send_headers`` then ``send_data`` ending the stream, when ``data`` fits the windows
    and a frame and ``block`` is a first, final header block; otherwise nothing is sent and
    the answer is False. ``conn`` must be :func:`usable`."""
    stream = conn.streams.get(sid)
    size = len(data)
    if stream is None or size > conn.outbound_flow_control_window \
            or size > stream.outbound_flow_control_window or size > conn.max_outbound_frame_size:
        return False
    machine = stream.state_machine
    if machine.headers_sent or block[0][1][:1] == b"1":
        return False
    _headers(conn, stream, machine, sid, block, False)
    conn.state_machine.process_input(ConnectionInputs.SEND_DATA)
    machine.process_input(StreamInputs.SEND_DATA)
    machine.process_input(StreamInputs.SEND_END_STREAM)
    stream.outbound_flow_control_window -= size
    out = conn._data_to_send
    out += _HEADER.pack(size >> 8, size & 0xFF, _DATA, _END_STREAM, sid)
    out += data
    conn.outbound_flow_control_window -= size
    return True


def _headers(conn: Any, stream: Any, machine: Any, sid: int, block: list[Field],
             end_stream: bool) -> None:
    """What jh2's ``send_headers`` does for a server's first, final block, in its order."""
    conn.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
    machine.process_input(StreamInputs.SEND_HEADERS)
    encoded = conn.encoder.encode(block)
    if end_stream:
        machine.process_input(StreamInputs.SEND_END_STREAM)
    size = len(encoded)
    most = stream.max_outbound_frame_size
    out = conn._data_to_send
    if size <= most:
        out += _HEADER.pack(size >> 8, size & 0xFF, _HEADERS,
                            _END_HEADERS | _END_STREAM if end_stream else _END_HEADERS, sid)
        out += encoded
        return
    kind, flags = _HEADERS, _END_STREAM if end_stream else 0
    for start in range(0, size, most):
        piece = encoded[start:start + most]
        if start + most >= size:
            flags |= _END_HEADERS
        out += _HEADER.pack(len(piece) >> 8, len(piece) & 0xFF, kind, flags, sid)
        out += piece
        kind, flags = _CONTINUATION, 0


def send_data(conn: Any, sid: int, data: bytes, end_stream: bool) -> None:
    """``conn.send_data(sid, data, end_stream=end_stream)``; ``conn`` must be :func:`usable`."""
    stream = conn.streams.get(sid)
    size = len(data)
    if stream is None or size > conn.outbound_flow_control_window \
            or size > stream.outbound_flow_control_window or size > conn.max_outbound_frame_size:
        conn.send_data(sid, data, end_stream=end_stream)  # or its error
        return
    conn.state_machine.process_input(ConnectionInputs.SEND_DATA)
    machine = stream.state_machine
    machine.process_input(StreamInputs.SEND_DATA)
    if end_stream:
        machine.process_input(StreamInputs.SEND_END_STREAM)
    stream.outbound_flow_control_window -= size
    out = conn._data_to_send
    out += _HEADER.pack(size >> 8, size & 0xFF, _DATA, _END_STREAM if end_stream else 0, sid)
    out += data
    conn.outbound_flow_control_window -= size


def window(conn: Any, sid: int) -> int:
    """What one DATA frame on ``sid`` may carry now: the smaller window, at most a frame
    (``conn.local_flow_control_window`` and the frame size, for a stream jh2 holds)."""
    stream = conn.streams.get(sid)
    if stream is None:
        return int(min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size))
    return int(min(conn.outbound_flow_control_window, stream.outbound_flow_control_window,
                   conn.max_outbound_frame_size))
