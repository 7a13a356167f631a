"""Malformed and smuggling-shaped requests are refused before the application; application
failures become 500 without leaking anything; every error response is logged."""

from __future__ import annotations

import logging

import pytest

from ocsi._http import Request, Response
from ocsi._http.headers import Headers

called: list[str] = []


async def app(req: Request) -> Response:
    called.append(req.target)
    body = await req.body.read()
    return Response(200, body=b"ok " + body)


BAD = {
    "cl+te": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te+cl": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Length: 4\r\n\r\n0\r\n\r\n", 400),
    "conflicting cl": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                       b"Content-Length: 5\r\n\r\nabcde", 400),
    "cl list": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde", 400),
    "bad cl": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    "bad chunk size": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nabc\r\n0\r\n\r\n", 400),
    "bad chunk end": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nabcX\r\n0\r\n\r\n", 400),
    "te gzip": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "te chunked twice": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
    "te in 1.0": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "space before colon": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", 400),
    "two hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "no host on 1.1": (b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400),
    "invalid host": (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    "host with userinfo": (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    "host bad port": (b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    "bad absolute authority": (b"GET http://a b/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "http/2.0": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "http/2.0 no host": (b"GET / HTTP/2.0\r\n\r\n", 505),
    "http/1.2": (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    "http/0.9 style": (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
    "http/3": (b"GET / HTTP/3\r\nHost: x\r\n\r\n", 505),
    "h2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    "garbage": (b"this is not http\r\n\r\n", 400),
    "lowercase version": (b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    "binary": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    "connect": (b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 400),
    "relative target": (b"GET foo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "star not options": (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "climb above root": (b"GET /a/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "climb encoded": (b"GET /%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "nul in header": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    "bare cr in header": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),
    # h11 takes these; RFC 9110 §5.5 does not (and HTTP/2 refuses them the same way)
    "control char in header": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
    "del in header": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n", 400),
    "escape in header": (b"GET / HTTP/1.1\r\nHost: x\r\nX: \x1b[31m\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", list(BAD))
def test_refused_before_the_app(serve, http, name):
    data, status = BAD[name]
    called.clear()
    srv = serve(app)
    with srv.connect() as s:
        s.sendall(data)
        r = http.Reader(s)
        resp = r.response()
        assert resp.status == status, (name, resp)
        assert resp.header("connection") == "close"
        assert resp.header("content-type") == "text/plain; charset=utf-8"
        assert resp.body.startswith(b"Error: ") and b"Traceback" not in resp.body
        assert r.at_eof()
    assert called == []
    recs = srv.wait_records(1)
    assert len(recs) == 1 and recs[0].status == status
    if "chunk" not in name:  # a bad body comes after a good head: the request is known
        assert recs[0].request is None
    # the server is still fine
    assert http.exchange(srv, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")[0].status == 200


def test_identical_duplicate_content_length_is_accepted(serve, http):
    # RFC 9110 §8.6 allows folding identical values; h11 does, and there is no ambiguity.
    srv = serve(app)
    resp = http.exchange(srv, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                              b"Content-Length: 3\r\n\r\nabc")[0]
    assert resp.body == b"ok abc"


def test_http10_without_host_is_fine(serve, http):
    srv = serve(app)
    assert http.exchange(srv, b"GET / HTTP/1.0\r\n\r\n")[0].status == 200


def test_smuggled_second_request_is_not_taken_from_a_body(serve, http):
    # Content-Length decides: the bytes after the body form the next request, nothing else.
    called.clear()
    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 31\r\n\r\n"
                  b"GET /smuggled HTTP/1.1\r\nX: y\r\n\r\n"
                  b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        assert r.response().body == b"ok GET /smuggled HTTP/1.1\r\nX: y\r\n\r"
        # the leftover "\n" + next request: a garbage line → 400, never /smuggled
        # the leftover "\n" + "GET /b": a request line after a bare LF is refused (h11 skips
        # blank CRLF lines only), and the connection closes: never /smuggled
        second = r.response()
        assert second.status == 400 and second.header("connection") == "close"
    assert "/smuggled" not in called


def test_app_exception_is_500_without_traceback(serve, http, caplog):
    async def boom(req):
        if req.target == "/boom":
            raise RuntimeError("secret internal detail /etc/ocsi")
        return Response(200, body=b"fine")

    srv = serve(boom)
    with caplog.at_level(logging.ERROR, logger="ocsi.http"):
        with srv.connect() as s:
            s.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            r = http.Reader(s)
            resp = r.response()
            assert resp.status == 500
            assert resp.body == b"Error: Internal Server Error"
            assert r.response().body == b"fine"  # the connection survives
        assert http.exchange(srv, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")[0].body == b"fine"
    assert "secret internal detail" in caplog.text
    assert [r.status for r in srv.wait_records(3)] == [500, 200, 200]


@pytest.mark.parametrize("bad", ["not a response", "crlf value", "bad name", "non latin-1",
                                 "bad content-length", "status 99"])
def test_unsendable_app_responses_become_500(serve, http, bad, caplog):
    async def app2(req):
        if bad == "not a response":
            return None
        if bad == "crlf value":
            return Response(200, [("x-a", "1\r\nSet-Cookie: evil=1")])
        if bad == "bad name":
            return Response(200, [("bad name", "1")])
        if bad == "non latin-1":
            return Response(200, [("x-a", "€")])
        if bad == "bad content-length":
            from ocsi._http import StreamBody

            async def gen():
                yield b"x"
            return Response(200, [("content-length", "abc")], StreamBody(gen()))
        return Response(99)

    srv = serve(app2)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = http.Reader(s).response()
    assert resp.status == 500 and resp.body == b"Error: Internal Server Error"
    assert resp.header("set-cookie") is None
    assert srv.wait_records(1)[0].status == 500


def test_access_log_failure_does_not_break_the_server(serve, http, caplog):
    srv = serve(app)

    def broken(rec):
        raise ValueError("log disk full")

    srv.manager.access_log = broken
    assert http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0].status == 200
    assert http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0].status == 200


def test_response_headers_are_not_injectable_via_reason(serve, http):
    async def app2(req):
        return Response(200, Headers(), b"x", reason="OK\r\nX-Evil: 1")

    srv = serve(app2)
    resp = http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert resp.status == 500 and resp.header("x-evil") is None


def test_client_disconnect_during_app_is_logged_once(serve, http):
    import asyncio
    import time

    async def slow(req):
        await asyncio.sleep(0.2)
        return Response(200, body=b"late")

    srv = serve(slow)
    import socket
    import struct

    s = srv.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.05)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST: the server learns it at once
    recs = srv.wait_records(1)
    time.sleep(0.1)
    assert len(srv.records) == 1 and recs[0].bytes_sent == 0
    assert http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0].body == b"late"
