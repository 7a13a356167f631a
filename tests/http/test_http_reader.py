"""The h11 driver (``RequestReader``) and the per-connection shortcuts of the connection layer."""

from __future__ import annotations

import importlib.util
import socket

import h11
import pytest
from ocsi._http import Request, Response
from ocsi._http.reader import RequestReader
from ocsi._http.response import error_response

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


def test_reader_heads_bodies_and_pipelining():
    r = RequestReader(16384)
    assert r.next_event() is h11.NEED_DATA
    r.receive_data(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel")
    ev = r.next_event()
    assert type(ev) is h11.Request and ev.target == b"/a"
    r.start_body(5)
    assert bytes(r.next_event().data) == b"hel"
    assert r.next_event() is h11.NEED_DATA
    r.receive_data(b"loGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert bytes(r.next_event().data) == b"lo"
    assert type(r.next_event()) is h11.EndOfMessage
    r.start_next_cycle(16384)
    assert r.buffered == len(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.peek(6) == b"GET /b"
    assert r.next_event().target == b"/b"
    r.start_next_cycle(16384)
    r.receive_data(b"")
    assert type(r.next_event()) is h11.ConnectionClosed


def test_reader_chunked_body():
    r = RequestReader(16384)
    r.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n0\r\n\r\n")
    assert type(r.next_event()) is h11.Request
    r.start_body(None)
    assert bytes(r.next_event().data) == b"abc"
    assert type(r.next_event()) is h11.EndOfMessage


@pytest.mark.parametrize("raw, hint", [
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host (h11's LocalProtocolError, re-raised as remote)
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"\x16\x03\x01", 400),  # TLS on a plain port
])
def test_reader_errors_are_remote_protocol_errors(raw, hint):
    r = RequestReader(16384)
    r.receive_data(raw)
    with pytest.raises(h11.RemoteProtocolError) as info:
        r.next_event()
    assert info.value.error_status_hint == hint


def test_reader_incomplete_head_bound_and_eof():
    r = RequestReader(64)
    r.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100)
    with pytest.raises(h11.RemoteProtocolError) as info:
        r.next_event()
    assert info.value.error_status_hint == 431
    r = RequestReader(64)
    r.receive_data(b"GET / HT")
    r.receive_data(b"")
    with pytest.raises(h11.RemoteProtocolError):
        r.next_event()  # end of input inside a head


def test_reader_eof_inside_a_body():
    r = RequestReader(16384)
    r.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc")
    r.next_event()
    r.start_body(9)
    assert bytes(r.next_event().data) == b"abc"
    r.receive_data(b"")
    with pytest.raises(h11.RemoteProtocolError):
        r.next_event()


def test_error_response_is_fresh_each_time():
    a, b = error_response(404), error_response(404)
    assert a.headers is not b.headers and a.body is not b.body
    a.headers.add("allow", "GET")
    assert b.headers.get("allow") is None
    assert a.body.data == b"Error: Not Found"
    assert error_response(599).body.data == b"Error: 599"
    assert error_response(500, "boom").body.data == b"Error: Internal Server Error\n\nboom"


async def _ok(req: Request) -> Response:
    body = await req.body.read()
    return Response(200, [("content-type", "text/plain")], req.target.encode() + b" " + body)


@pytest.mark.parametrize("loop", LOOPS)
def test_chunked_body_then_pipelined_request(serve, http, loop):
    srv = serve(_ok, loop=loop)
    with srv.connect() as s:
        s.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"2\r\nhi\r\n0\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        assert r.response().body == b"/c hi"
        assert r.response().body == b"/d "


@pytest.mark.parametrize("loop", LOOPS)
def test_accepted_sockets_have_nodelay(serve, http, loop):
    """uvloop sets TCP_NODELAY itself; on asyncio the connection layer does."""
    srv = serve(_ok, loop=loop)
    with srv.connect() as s:
        s.sendall(b"GET /n HTTP/1.1\r\nHost: x\r\n\r\n")
        assert http.Reader(s).response().status == 200

        def nodelay() -> list[int]:
            return [c._transport.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in srv.manager.connections]

        assert all(srv.run(nodelay))
        assert srv.run(nodelay)


@pytest.mark.parametrize("loop", LOOPS)
def test_new_connection_per_request_after_idle(serve, http, loop):
    """The sweep timer outlives the last connection and is re-armed; new ones still work."""
    srv = serve(_ok, loop=loop)
    for i in range(3):
        with srv.connect() as s:
            s.sendall(f"GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            resp = http.Reader(s).response()
            assert resp.body == f"/{i} ".encode()
            assert resp.header("connection") == "close"
            assert s.recv(10) == b""  # closed right after the response
