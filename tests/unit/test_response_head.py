"""The proxy's one-pass reading of a response head (``ocsi/_http/responsehead.py``) beside h11.

Whenever :func:`parse_response_head` takes a head, h11 must read the same bytes as the same
status, version, reason and fields (lower-case names, values as text) and frame its body the
same way; every head it declines is left untouched for h11. Mutated heads as in
``test_fast_head.py``, whose response shapes and mutations these reuse.
"""

from __future__ import annotations

import h11
import pytest

from ocsi._http.reader import ResponseReader, header_fields, response_framing
from ocsi._http.responsehead import ResponseHead, parse_response_head
from test_fast_head import mutated_heads

RESPONSES = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"x\"\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nDate: Sun, 06 Dec 2026 04:00:00 GMT\r\n\r\n",
    b"HTTP/1.1 302 \r\nLocation: /x\r\nX-Empty:\r\nX-Spaces:  v  \r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 500\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 Fine \xe9\tok\r\nTransfer-Encoding: Chunked\r\nX: \xffy\r\n\r\n",
]


def _h11_response(data: bytes) -> object:
    reader = ResponseReader(64 * 1024, fast=False)
    reader.start_response()
    reader.receive_data(data)
    try:
        return reader.next_event()
    except h11.RemoteProtocolError as exc:
        return exc


MORE = [
    b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: x-a\r\nX-A: 1\r\n\r\n",
    b"HTTP/1.0 304 Not Modified\r\nContent-Length: 10\r\nETag: \"e\"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n",
]


def _same(fast: ResponseHead, head: bytes) -> None:
    ref = _h11_response(head)
    assert isinstance(ref, h11.Response), (head, ref)
    assert (fast.status_code, fast.http_version, fast.reason) == \
        (ref.status_code, ref.http_version, ref.reason), head
    fields = header_fields(ref.headers)
    assert list(fast.fields) == fields, head
    assert fast.by_name == dict(fields) and fast.repeated == (len(dict(fields)) != len(fields))
    for method in ("GET", "HEAD"):
        try:
            framing = response_framing(method, ref.status_code, fields)
        except h11.RemoteProtocolError:
            pytest.fail(f"taken, but h11's framing refuses it: {head!r}")
        assert fast.framing(method) == framing, head


@pytest.mark.parametrize("seed", range(6))
def test_whenever_the_one_pass_reads_a_response_h11_reads_the_same(seed: int) -> None:
    taken = declined = 0
    for head in mutated_heads(seed, 400, RESPONSES + MORE):
        fast = parse_response_head(head)
        if fast is None:
            declined += 1
            continue
        taken += 1
        _same(fast, head)
    assert taken >= 20 and declined >= 100


def test_the_usual_responses_are_taken() -> None:
    for head in RESPONSES + MORE:
        fast = parse_response_head(head)
        assert fast is not None, head
        _same(fast, head)


@pytest.mark.parametrize("head", [
    b"HTTP/2.0 200 OK\r\n\r\n",
    b"HTTP/1.1  200 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\x0bb\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX y: 1\r\n\r\n",
    b"HTTP/2.0 200 OK\r\n\r\n",
    b"HTTP/1.1  200 OK\r\n\r\n",
])
def test_shapes_left_to_h11(head: bytes) -> None:
    assert parse_response_head(head) is None


def test_the_reader_takes_a_head_and_a_whole_body_at_once() -> None:
    reader = ResponseReader(64 * 1024, fast=True)
    reader.start_response()
    assert reader.read_head() is None  # nothing yet
    reader.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
    head = reader.read_head()
    assert head is not None and head.framing("GET") == ("length", 5)
    reader.start_body("length", 5)
    assert reader.read_head() is None  # a body is awaited now, not a head
    assert reader.take_body(5) is None and reader.buffered == 3  # not whole: nothing taken
    reader.receive_data(b"lo+")
    assert reader.take_body(5) == b"hello"
    assert reader.buffered == 1  # what followed stays (a proxy then closes that connection)


def test_the_reader_leaves_heads_it_declines_to_h11() -> None:
    reader = ResponseReader(64 * 1024, fast=True)
    reader.start_response()
    reader.receive_data(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
    assert reader.read_head() is None
    assert isinstance(reader.next_event(), h11.InformationalResponse)
    reader.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    head = reader.read_head()
    assert head is not None and head.status_code == 204 and head.framing("GET") == ("length", 0)
    assert reader.take_body(0) == b""


def test_a_head_read_before_is_the_same_head() -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 3\r\n\r\n"
    first = parse_response_head(head)
    assert first is not None and parse_response_head(bytes(bytearray(head))) is first
    assert type(first.fields) is tuple  # shared, so not to be changed


def test_h11_only_when_the_fast_path_is_off() -> None:
    reader = ResponseReader(64 * 1024, fast=False)
    reader.start_response()
    reader.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert reader.read_head() is None
    assert isinstance(reader.next_event(), h11.Response)


def test_the_response_reader_takes_the_head_and_leaves_the_body() -> None:
    reader = ResponseReader(64 * 1024, fast=True)
    reader.start_response()
    reader.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    head = reader.next_event()
    assert type(head) is h11.Response and head.status_code == 200
    reader.start_body("length", 5)
    data = reader.next_event()
    assert isinstance(data, h11.Data) and data.data == b"hello"
    assert isinstance(reader.next_event(), h11.EndOfMessage)
