"""Limits and timeouts: 414, 431, 413, 408, idle keep-alive close, 503 at max_connections."""

from __future__ import annotations

import socket
import time

from ocsi._http import Request, Response
from ocsi._http.limits import Limits
from ocsi._http.request import BodyTooLarge

calls: list[str] = []


async def app(req: Request) -> Response:
    calls.append(req.target)
    body = await req.body.read()
    return Response(200, body=b"ok %d" % len(body))


def _error(resp, status):
    assert resp.status == status, resp
    assert resp.header("connection") == "close"
    assert resp.body.startswith(b"Error: ")
    assert b"Traceback" not in resp.body


def test_414_request_line_too_long(serve, http):
    calls.clear()
    srv = serve(app, Limits(max_request_line=100, max_header_bytes=1000))
    resp = http.exchange(srv, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    _error(resp, 414)
    # longer than the whole head limit too (h11 itself stops at max_header_bytes)
    with srv.connect() as s:
        s.sendall(b"GET /" + b"a" * 5000)
        r = http.Reader(s)
        _error(r.response(), 414)
        assert r.at_eof()
    assert calls == []
    recs = srv.wait_records(2)
    assert [r.status for r in recs] == [414, 414]
    assert recs[0].method == "GET" and recs[0].request is None


def test_431_head_too_large_and_too_many_fields(serve, http):
    calls.clear()
    srv = serve(app, Limits(max_header_bytes=1024, max_headers=5))
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 2000 + b"\r\n\r\n"
    _error(http.exchange(srv, big)[0], 431)
    many = (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(5))
            + b"\r\n")
    _error(http.exchange(srv, many)[0], 431)
    five = (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(4))
            + b"\r\n")
    assert http.exchange(srv, five)[0].status == 200
    assert [r.status for r in srv.wait_records(3)] == [431, 431, 200]


def test_413_by_content_length_before_the_app(serve, http):
    calls.clear()
    srv = serve(app, Limits(max_body=10))
    with srv.connect() as s:
        s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890")
        r = http.Reader(s)
        _error(r.response(), 413)
        assert r.at_eof()
    # with 100-continue the client never has to send the body
    with srv.connect() as s:
        s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        r = http.Reader(s)
        _error(r.response(), 413)
    assert calls == []
    ok = http.exchange(srv, b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
    assert ok[0].body == b"ok 10"
    assert [r.status for r in srv.wait_records(3)] == [413, 413, 200]


def test_413_chunked_counted_as_it_comes(serve, http):
    seen = []

    async def app2(req):
        try:
            await req.body.read()
        except BodyTooLarge as exc:
            seen.append(exc)
            if req.target == "/polite":
                return Response(413, body=b"custom too large")
            raise
        return Response(200)

    srv = serve(app2, Limits(max_body=100))
    chunked = b"Transfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"x" * 64 + b"\r\n" * 1
    more = b"40\r\n" + b"y" * 64 + b"\r\n0\r\n\r\n"
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + chunked + more)
        r = http.Reader(s)
        _error(r.response(), 413)  # the app raised: 413, not 500
        assert r.at_eof()
    with srv.connect() as s:
        s.sendall(b"POST /polite HTTP/1.1\r\nHost: x\r\n" + chunked + more)
        resp = http.Reader(s).response()
        assert resp.status == 413 and resp.body == b"custom too large"
        assert resp.header("connection") == "close"
    assert len(seen) == 2


def test_408_head_timeout_then_close(serve, http):
    srv = serve(app, Limits(header_timeout=0.3))
    with srv.connect() as s:
        t0 = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        r = http.Reader(s)
        _error(r.response(), 408)
        assert 0.25 < time.monotonic() - t0 < 2.0
        assert r.at_eof()
    assert srv.wait_records(1)[0].status == 408


def test_idle_keep_alive_closed_without_response(serve, http):
    srv = serve(app, Limits(keepalive_timeout=0.3))
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        assert r.response().status == 200
        t0 = time.monotonic()
        assert r.at_eof(3)
        assert 0.25 < time.monotonic() - t0 < 2.0
        assert r.buf == b""  # no 408
    with srv.connect() as s:  # a connection that never sends anything
        r = http.Reader(s)
        assert r.at_eof(3) and r.buf == b""
    time.sleep(0.1)
    assert len(srv.records) == 1


def test_408_when_the_body_stops_arriving(serve, http):
    srv = serve(app, Limits(read_timeout=0.3))
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        r = http.Reader(s)
        _error(r.response(), 408)
        assert r.at_eof()


def test_503_over_max_connections(serve, http):
    srv = serve(app, Limits(max_connections=2))
    a, b = srv.connect(), srv.connect()
    try:
        for s in (a, b):  # make sure both are accepted and registered
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert http.Reader(s).response().status == 200
        with srv.connect() as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = http.Reader(c)
            _error(r.response(), 503)
            assert r.at_eof()
        assert srv.run(lambda: srv.manager.active) == 2
    finally:
        a.close()
        b.close()
    end = time.monotonic() + 3
    while srv.run(lambda: srv.manager.active) and time.monotonic() < end:
        time.sleep(0.01)
    assert http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0].status == 200
    statuses = sorted(r.status for r in srv.wait_records(4))
    assert statuses == [200, 200, 200, 503]


def test_pipelined_flood_pauses_reading(serve, http, monkeypatch):
    import asyncio
    import threading

    from ocsi._http import h1state
    from ocsi._http.connection import HTTPProtocol

    pauses = []
    real_act = HTTPProtocol._act

    def spy(self):
        if self._st.todo & h1state.PAUSE:  # the connection's state asks to stop reading
            pauses.append(self._st.phase)
        real_act(self)

    monkeypatch.setattr(HTTPProtocol, "_act", spy)

    async def slow(req):
        await asyncio.sleep(0.002)
        return Response(200, body=b"k")

    srv = serve(slow)
    n = 600
    req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n"
    with srv.connect(timeout=10) as s:
        def send():
            try:
                s.sendall(req * n)
            except OSError:
                pass

        t = threading.Thread(target=send)
        t.start()
        r = http.Reader(s)
        for _ in range(n):
            assert r.response().body == b"k"
        t.join(5)
    assert pauses, "reading never paused while ~260 KB of pipelined requests waited"
