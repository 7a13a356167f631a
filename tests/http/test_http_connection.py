"""Keep-alive, pipelining, HTTP/1.0, HEAD and the Request the application sees."""

from __future__ import annotations

import http.client
import importlib.util
import re

import pytest

from ocsi._http import BytesBody, Headers, Request, Response
from ocsi._http.limits import Limits

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


async def echo_app(req: Request) -> Response:
    body = await req.body.read()
    text = f"{req.method} {req.target} {req.version} {body!r}"
    return Response(200, [("content-type", "text/plain")], text.encode())


@pytest.mark.parametrize("loop", LOOPS)
def test_keep_alive_many_requests_one_connection(serve, http, loop):
    srv = serve(echo_app, loop=loop)
    with srv.connect() as s:
        r = http.Reader(s)
        for i in range(5):
            s.sendall(f"GET /n{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            resp = r.response()
            assert resp.status == 200
            assert resp.body == f"GET /n{i} 1.1 b''".encode()
            assert resp.header("connection") is None
    recs = srv.wait_records(5)
    assert [rec.target for rec in recs] == [f"/n{i}" for i in range(5)]


def test_http_client_keep_alive(serve):
    srv = serve(echo_app)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    for i in range(3):
        conn.request("POST", f"/p{i}", body=b"x" * i)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == f"POST /p{i} 1.1 {b'x' * i!r}".encode()
    conn.close()
    assert srv.wait_records(3)[0].method == "POST"


@pytest.mark.parametrize("loop", LOOPS)
def test_pipelining_answers_in_order(serve, http, loop):
    srv = serve(echo_app, loop=loop)
    data = (b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
    with srv.connect() as s:
        s.sendall(data)
        r = http.Reader(s)
        bodies = [r.response().body for _ in range(3)]
        assert bodies == [b"GET /1 1.1 b''", b"POST /2 1.1 b'hello'", b"GET /3 1.1 b''"]
        assert not r.at_eof(0.2)  # still open


def test_pipelined_request_after_close_is_not_answered(serve, http):
    srv = serve(echo_app)
    with srv.connect() as s:
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        resp = r.response()
        assert resp.header("connection") == "close"
        assert r.at_eof()
        assert r.buf == b""


def test_connection_close_honoured(serve, http):
    srv = serve(echo_app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = http.Reader(s)
        resp = r.response()
        assert resp.status == 200
        assert resp.header("connection") == "close"
        assert r.at_eof()


def test_http10_closes_by_default(serve, http):
    srv = serve(echo_app)
    with srv.connect() as s:
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        r = http.Reader(s)
        resp = r.response()
        assert resp.body == b"GET /old 1.0 b''"
        assert resp.header("connection") == "close"
        assert r.at_eof()
    rec = srv.wait_records(1)[0]
    assert rec.version == "1.0" and rec.host is None and rec.request.host is None


def test_http10_keep_alive_when_asked(serve, http):
    srv = serve(echo_app)
    with srv.connect() as s:
        r = http.Reader(s)
        for i in range(3):
            s.sendall(f"GET /k{i} HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".encode())
            resp = r.response()
            assert resp.body == f"GET /k{i} 1.0 b''".encode()
            assert resp.header("connection") == "keep-alive"
        s.sendall(b"GET /last HTTP/1.0\r\n\r\n")
        assert r.response().header("connection") == "close"
        assert r.at_eof()


def test_head_has_get_headers_and_no_body(serve, http):
    async def app(req):
        return Response(200, [("content-type", "text/plain")], b"0123456789")

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        head = r.response(head_request=True)
        get = r.response()
        assert head.header("content-length") == "10" == get.header("content-length")
        assert get.body == b"0123456789"
    recs = srv.wait_records(2)
    assert (recs[0].method, recs[0].bytes_sent) == ("HEAD", 0)
    assert (recs[1].method, recs[1].bytes_sent) == ("GET", 10)


def test_head_of_a_stream_announces_chunked_sends_nothing(serve, http):
    from ocsi._http import StreamBody

    closed = []

    async def gen():
        yield b"never sent"

    async def app(req):
        async def close():
            closed.append(True)
        return Response(200, body=StreamBody(gen(), close=close))

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        head = r.response(head_request=True)
        assert head.header("transfer-encoding") == "chunked"
        assert r.response().body == b"never sent"
    srv.wait_records(2)  # written after the body is closed
    assert closed == [True, True]


def test_no_body_statuses(serve, http):
    async def app(req):
        status = int(req.segments[0])
        return Response(status, [("content-length", "99")] if status == 304 else None,
                        b"ignored body")

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /200 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        a, b, c = r.response(), r.response(), r.response()
        assert a.status == 204 and a.header("content-length") is None
        assert b.status == 304 and b.header("content-length") == "99"
        assert c.status == 200 and c.body == b"ignored body"


def test_server_and_date_headers(serve, http):
    async def app(req):
        if req.target == "/own":
            return Response(200, [("server", "Mine"), ("date", "Thu, 01 Jan 1970 00:00:00 GMT")])
        return Response(200)

    srv = serve(app, Limits(server_name="TestServer/1"))
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /own HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        a, b = r.response(), r.response()
    assert a.header("server") == "TestServer/1"
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", a.header("date"))
    assert a.header("content-length") == "0"
    assert b.all("server") == ["Mine"] and b.all("date") == ["Thu, 01 Jan 1970 00:00:00 GMT"]


def test_header_names_on_the_wire(serve, http):
    async def app(req):
        return Response(200, Headers([("content-type", "text/plain"), ("etag", '"x"'),
                                      ("x-custom-thing", "1"), ("set-cookie", "a=1"),
                                      ("set-cookie", "b=2")]))

    srv = serve(app)
    resp = http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    head = resp.raw_head.decode()
    assert "\r\nContent-Type: text/plain" in head and "\r\nETag: " in head
    assert "\r\nX-Custom-Thing: 1" in head
    assert resp.all("set-cookie") == ["a=1", "b=2"]


def test_request_fields(serve, http):
    seen: list[Request] = []

    async def app(req):
        seen.append(req)
        return Response(200)

    srv = serve(app)
    http.exchange(srv, b"GET /a%20b/./c/../d?x=1&y=%2F HTTP/1.1\r\nHost: WWW.Example.org:8080\r\n"
                       b"User-Agent: t/1\r\nX-Thing: a\r\nX-Thing: b\r\n\r\n")
    http.exchange(srv, b"GET http://Other.Example:81/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n")
    http.exchange(srv, b"OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\n\r\n")
    a, b, c = seen
    assert (a.method, a.target, a.version) == ("GET", "/a%20b/./c/../d?x=1&y=%2F", "1.1")
    assert a.raw_path == "/a%20b/./c/../d" and a.query == "x=1&y=%2F"
    assert a.segments == ("a b", "d") and a.raw_segments == ("a%20b", "d")
    assert a.host == "www.example.org" and a.host_header == "WWW.Example.org:8080"
    assert a.port == srv.port and a.secure is False and a.client == "127.0.0.1"
    assert a.headers.get_all("x-thing") == ["a", "b"] and a.headers["user-agent"] == "t/1"
    assert b.host == "other.example" and b.raw_path == "/p" and b.query == "q"
    assert c.raw_path == "*" and c.host == "[::1]"
    recs = srv.wait_records(3)
    assert recs[0].user_agent == "t/1" and recs[0].host == "WWW.Example.org:8080"
    assert recs[0].request is a and recs[0].client == "127.0.0.1" and recs[0].port == srv.port


def test_access_record_fields(serve, http):
    async def app(req):
        return Response(201, body=b"abc")

    srv = serve(app)
    http.exchange(srv, b"PUT /r HTTP/1.1\r\nHost: h\r\nReferer: http://r/\r\nUser-Agent: ua\r\n"
                       b"X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nContent-Length: 0\r\n\r\n")
    rec = srv.wait_records(1)[0]
    assert (rec.method, rec.target, rec.version, rec.host) == ("PUT", "/r", "1.1", "h")
    assert (rec.referer, rec.user_agent, rec.forwarded_for) == ("http://r/", "ua",
                                                                "10.0.0.1, 10.0.0.2")
    assert (rec.status, rec.bytes_sent, rec.secure) == (201, 3, False)
    assert rec.duration >= 0 and rec.time > 1e9


def test_app_and_limits_can_be_replaced(serve, http):
    async def first(req):
        return Response(200, body=b"first")

    async def second(req):
        return Response(200, body=b"second")

    srv = serve(first)
    with srv.connect() as s:
        r = http.Reader(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.response().body == b"first"
        srv.manager.app = second
        srv.manager.limits = Limits(server_name="Reloaded")
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = r.response()
        assert resp.body == b"second" and resp.header("server") == "Reloaded"


def test_active_and_in_flight(serve, http):
    import threading

    gate = threading.Event()
    import asyncio

    async def app(req):
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return Response(200, body=b"done")

    srv = serve(app)
    with srv.connect() as s1, srv.connect() as s2:
        s1.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        import time

        end = time.monotonic() + 3
        while srv.run(lambda: srv.manager.in_flight) < 1 and time.monotonic() < end:
            time.sleep(0.01)
        assert srv.run(lambda: srv.manager.active) == 2
        assert srv.run(lambda: srv.manager.in_flight) == 1
        gate.set()
        assert http.Reader(s1).response().body == b"done"
    end = time.monotonic() + 3
    while srv.run(lambda: srv.manager.active) and time.monotonic() < end:
        time.sleep(0.01)
    assert srv.run(lambda: (srv.manager.active, srv.manager.in_flight)) == (0, 0)


def test_bytes_body_larger_than_one_write(serve, http):
    big = bytes(range(256)) * 1024  # 256 KiB

    async def app(req):
        return Response(200, body=BytesBody(big))

    srv = serve(app)
    assert http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0].body == big


@pytest.mark.parametrize("loop", LOOPS)
def test_a_request_hears_that_its_client_has_gone(serve, loop):
    import asyncio
    import socket
    import threading

    heard = threading.Event()
    waiting = threading.Event()

    async def long_poll(req: Request) -> Response:
        assert not req.client_gone
        waiting.set()
        await asyncio.wait_for(req.wait_client_gone(), 10)
        assert req.client_gone and req.replace(target="/x").client_gone
        heard.set()
        return Response(200, [], b"nobody reads this")

    srv = serve(long_poll, loop=loop)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        assert waiting.wait(5)
    assert heard.wait(5)
