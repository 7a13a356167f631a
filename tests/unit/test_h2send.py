"""ocsi's own HEADERS and DATA frames (ocsi._http.h2send) against jh2's public methods.

Two server connections take the same client bytes; one answers through jh2's ``send_headers``
and ``send_data``, the other through :mod:`ocsi._http.h2send`. What they write, the stream and
connection states and the windows must be the same after every step, and a send jh2 refuses
must be refused the same way.
"""

from __future__ import annotations

from typing import Any

import pytest

jh2 = pytest.importorskip("jh2")
import jh2.config  # noqa: E402
import jh2.connection  # noqa: E402
import jh2.events  # noqa: E402
import jh2.exceptions  # noqa: E402
import jh2.settings  # noqa: E402

from ocsi._http import h2send  # noqa: E402
from ocsi._http.wire import field_block  # noqa: E402

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
           (b":path", b"/f"), (b"user-agent", b"test")]
RESPONSE = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"server", b"ocsi"),
            (b"date", b"Sun, 06 Dec 2026 08:00:00 GMT")]


def _fields(block: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes, bool]]:
    return [(n, v, False) for n, v in block]


def _server() -> Any:
    config = jh2.config.H2Configuration(client_side=False, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False)
    conn = jh2.connection.H2Connection(config)
    conn.initiate_connection()
    conn.data_to_send()
    return conn


class Pair:
    """A client, and two servers fed what it sends: ``public`` and ``fast``."""

    def __init__(self, window: int = 65_535, frame: int = 16_384, table: int = 4_096) -> None:
        self.client = jh2.connection.H2Connection(jh2.config.H2Configuration(
            client_side=True, header_encoding=None))
        codes = jh2.settings.SettingCodes
        self.client.local_settings = jh2.settings.Settings(client=True, initial_values={
            codes.INITIAL_WINDOW_SIZE: window, codes.MAX_FRAME_SIZE: frame,
            codes.HEADER_TABLE_SIZE: table})
        self.client.initiate_connection()
        self.public, self.fast = _server(), _server()
        assert h2send.usable(self.fast)
        self.feed()

    def feed(self) -> None:
        data = self.client.data_to_send()
        for server in (self.public, self.fast):
            server.receive_data(data)

    def request(self, end_stream: bool = True) -> int:
        sid = self.client.get_next_available_stream_id()
        self.client.send_headers(sid, REQUEST, end_stream=end_stream)
        self.feed()
        return sid

    def both(self, public: Any, fast: Any) -> None:
        """Run one step each way (the same error, or none), then compare."""
        errors = []
        for step in (public, fast):
            try:
                step()
                errors.append(None)
            except jh2.exceptions.ProtocolError as exc:
                errors.append(type(exc))
        assert errors[0] == errors[1]
        self.same()

    def same(self) -> None:
        a, b = self.public, self.fast
        out = a.data_to_send()
        assert out == b.data_to_send()
        assert a.state_machine.state == b.state_machine.state
        assert a.outbound_flow_control_window == b.outbound_flow_control_window
        assert a.streams.keys() == b.streams.keys()
        for sid, s in a.streams.items():
            t = b.streams[sid]
            assert s.state_machine.state == t.state_machine.state
            assert vars(s.state_machine) == vars(t.state_machine)
            assert s.outbound_flow_control_window == t.outbound_flow_control_window
        # what was written decodes, for the client, to the same events
        events = self.client.receive_data(out)
        self.client.data_to_send()
        assert not any(isinstance(e, jh2.events.ConnectionTerminated) for e in events)

    def headers(self, sid: int, block: list[tuple[bytes, bytes]], end: bool) -> None:
        self.both(lambda: self.public.send_headers(sid, block, end_stream=end),
                  lambda: h2send.send_headers(self.fast, sid, _fields(block), end))

    def data(self, sid: int, data: bytes, end: bool) -> None:
        self.both(lambda: self.public.send_data(sid, data, end_stream=end),
                  lambda: h2send.send_data(self.fast, sid, data, end))


def test_small_answers_are_the_same_frames() -> None:
    p = Pair()
    for _ in range(5):  # the HPACK dynamic table fills, and later blocks refer to it
        sid = p.request()
        p.headers(sid, RESPONSE + [(b"content-length", b"100")], False)
        p.data(sid, b"x" * 100, True)
        assert h2send.window(p.fast, sid) == min(p.public.local_flow_control_window(sid), 16_384) \
            if sid in p.public.streams else True


@pytest.mark.parametrize("table", [0, 64])
def test_a_smaller_hpack_table_is_announced_by_the_first_block(table: int) -> None:
    """The client's smaller table size reaches the encoder; the fast path's first block starts
    with the same size update as jh2's, and later blocks fit the table."""
    p = Pair(table=table)
    for _ in range(3):
        sid = p.request()
        p.headers(sid, RESPONSE, False)
        p.data(sid, b"x", True)


def test_headers_that_end_the_stream() -> None:
    p = Pair()
    sid = p.request()
    p.headers(sid, [(b":status", b"304"), (b"server", b"ocsi")], True)
    assert p.fast.streams[sid].closed


def test_a_block_larger_than_a_frame_goes_in_continuation_frames() -> None:
    p = Pair()
    sid = p.request()
    big = RESPONSE + [(b"x-big", b"v" * 40_000)]
    p.headers(sid, big, False)
    p.data(sid, b"", True)
    sid = p.request()
    p.headers(sid, big, True)


def test_data_in_several_frames_and_past_the_window() -> None:
    p = Pair(window=20_000)
    sid = p.request()
    p.headers(sid, RESPONSE, False)
    p.data(sid, b"a" * 16_384, False)
    p.data(sid, b"b" * 3_616, False)  # the stream's window is now empty
    assert h2send.window(p.fast, sid) == 0
    p.data(sid, b"c", True)  # refused by both: FlowControlError
    p.data(sid, b"d" * 20_000, True)  # larger than a frame: refused by both


def test_informational_answer_then_final_then_trailers() -> None:
    p = Pair()
    sid = p.request()
    p.headers(sid, [(b":status", b"103"), (b"link", b"</s.css>; rel=preload")], False)
    p.headers(sid, RESPONSE, False)
    p.data(sid, b"x" * 10, False)
    p.headers(sid, [(b"x-trailer", b"1")], True)


def test_sending_on_a_reset_or_unknown_stream_is_refused_alike() -> None:
    p = Pair()
    sid = p.request(end_stream=False)
    p.client.reset_stream(sid)
    p.feed()
    p.headers(sid, RESPONSE, False)
    p.data(sid, b"x", True)
    p.headers(99, RESPONSE, True)  # never opened
    p.data(99, b"x", True)


def test_an_answer_in_one_go_is_headers_then_data() -> None:
    p = Pair(window=1_000)
    block = RESPONSE + [(b"content-length", b"100")]
    for _ in range(3):
        sid = p.request()
        p.both(lambda: (p.public.send_headers(sid, block),
                        p.public.send_data(sid, b"x" * 100, end_stream=True)),
               lambda: h2send.send_answer(p.fast, sid, _fields(block), b"x" * 100) or None)
    # what does not fit the stream's window is not sent at all
    sid = p.request()
    assert not h2send.send_answer(p.fast, sid, _fields(RESPONSE), b"y" * 1_001)
    assert p.fast.data_to_send() == b""
    p.headers(sid, RESPONSE, False)  # both still at the stream's first header block
    assert not h2send.send_answer(p.fast, sid, _fields(RESPONSE), b"z")  # second: not here


@pytest.mark.parametrize("status, headers, length, head_only", [
    (200, [("content-type", "text/plain"), ("etag", '"a-1"')], 100, False),
    (200, [("content-type", "text/plain"), ("etag", '"a-1"')], 100, False),  # from the table
    (404, [("Connection", "close"), ("connection", "close"), ("transfer-encoding", "chunked"),
           ("content-length", "7"), ("x-a", "1")], None, False),
    (304, [("date", "Sun, 06 Dec 2026 08:00:00 GMT"), ("server", "other")], 10, False),
    (204, [("server", "other"), ("x-long", "v" * 1_000)], 0, False),
    (200, [("x-a", "1"), ("x-a", "1"), ("set-cookie", "a=1"), ("set-cookie", "b=2")], 5, True),
    (103, [("link", "</s.css>; rel=preload")], None, False),
])
def test_the_response_block_is_field_blocks(status: int, headers: list[tuple[str, str]],
                                            length: int | None, head_only: bool) -> None:
    """What ``response_block`` makes, the table full or empty, is ``field_block``'s."""
    headers_b = [(n.encode(), v.encode()) for n, v in headers]
    for _ in range(2):
        ours, ours_empty = h2send.response_block(status, headers, length, head_only, b"ocsi")
        theirs, theirs_empty = field_block(status, headers, length, head_only, b"ocsi")
        # the clock may pass a second between the two: a date is compared by its place
        assert [(n, b"<date>" if n == b"date" and (n, v) not in headers_b else v)
                for n, v, _ in ours] == [(n, b"<date>" if n == b"date" and (n, v) not in headers_b
                                          else v) for n, v in theirs]
        assert ours_empty == theirs_empty
        assert not any(sensitive for _, _, sensitive in ours)


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\0b"])
def test_the_response_block_refuses_what_field_block_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        field_block(200, [("x-a", value)], None, False, b"ocsi")
    with pytest.raises(ValueError):
        h2send.response_block(200, [("x-a", value)], None, False, b"ocsi")
