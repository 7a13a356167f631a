"""Request bodies in (sized, chunked, 100-continue, drained) and response bodies out (bytes,
streams, files through sendfile)."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import socket
import time

import pytest

from ocsi._http import BytesBody, FileBody, Request, Response, StreamBody
from ocsi._http.limits import Limits

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


async def digest_app(req: Request) -> Response:
    h = hashlib.sha256()
    n = 0
    async for chunk in req.body:
        assert isinstance(chunk, bytes)
        h.update(chunk)
        n += len(chunk)
    return Response(200, body=f"{n} {h.hexdigest()}".encode())


def _chunked(data: bytes, size: int) -> bytes:
    out = b"".join(b"%x\r\n%b\r\n" % (len(data[i:i + size]), data[i:i + size])
                   for i in range(0, len(data), size))
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("loop", LOOPS)
def test_sized_and_chunked_bodies_arrive_intact(serve, http, loop):
    srv = serve(digest_app, loop=loop)
    data = os.urandom(3 * 1024 * 1024 + 7)
    expect = f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()
    with srv.connect() as s:
        r = http.Reader(s)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data)
                  + data)
        assert r.response().body == expect
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + _chunked(data, 100_000))
        assert r.response().body == expect
        # trailers are accepted (and dropped)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")
        assert r.response().body.startswith(b"3 ")


def test_slow_reader_gets_the_whole_body(serve, http):
    async def app(req):
        parts = []
        async for chunk in req.body:
            parts.append(chunk)
            await asyncio.sleep(0.001)
        data = b"".join(parts)
        return Response(200, body=hashlib.sha256(data).hexdigest().encode())

    srv = serve(app)
    data = os.urandom(2 * 1024 * 1024)
    resp = http.exchange(srv, b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(data) + data)[0]
    assert resp.body == hashlib.sha256(data).hexdigest().encode()


def test_expect_100_continue_sent_when_the_app_reads(serve, http):
    srv = serve(digest_app)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        r = http.Reader(s)
        interim = r.interim()
        assert interim.status == 100
        s.sendall(b"hello")
        resp = r.response()
        assert resp.status == 200 and resp.body.startswith(b"5 ")
        assert resp.header("connection") is None
    recs = srv.wait_records(1)
    assert len(recs) == 1 and recs[0].status == 200  # no record for the 100


def test_expect_100_continue_not_sent_when_the_app_answers_without_reading(serve, http):
    async def app(req):
        return Response(403, body=b"no")

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        r = http.Reader(s)
        resp = r.response()
        assert resp.status == 403
        assert resp.header("connection") == "close"  # the body was never asked for
        assert r.at_eof()


def test_unread_small_body_is_drained_and_connection_kept(serve, http):
    async def app(req):
        return Response(200, body=req.target.encode())

    srv = serve(app)
    with srv.connect() as s:
        r = http.Reader(s)
        body = b"z" * 300_000
        s.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        resp = r.response()
        assert resp.body == b"/a" and resp.header("connection") is None
        s.sendall(b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + _chunked(body, 7000) + b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.response().body == b"/b"
        assert r.response().body == b"/c"


def test_unread_large_body_closes_the_connection(serve, http):
    async def app(req):
        return Response(200, body=b"early")

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n" + b"x" * 1000)
        r = http.Reader(s)
        resp = r.response()
        assert resp.body == b"early" and resp.header("connection") == "close"
        assert r.at_eof(3)


@pytest.mark.parametrize("loop", LOOPS)
def test_streamed_response_is_chunked(serve, http, loop):
    async def gen():
        for i in range(5):
            await asyncio.sleep(0)
            yield b"part%d;" % i
        yield b""  # empty chunks are skipped, never a premature terminator

    async def app(req):
        return Response(200, [("content-type", "text/plain")], StreamBody(gen()))

    srv = serve(app, loop=loop)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        r = http.Reader(s)
        for _ in range(2):
            resp = r.response()
            assert resp.header("transfer-encoding") == "chunked"
            assert resp.header("content-length") is None
            assert resp.body == b"part0;part1;part2;part3;part4;"
    assert srv.wait_records(2)[0].bytes_sent == 30


def test_streamed_response_to_http10_is_close_delimited(serve, http):
    async def gen():
        yield b"one,"
        yield b"two"

    async def app(req):
        return Response(200, body=StreamBody(gen()))

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = http.Reader(s)
        resp = r.response()
        assert resp.header("transfer-encoding") is None and resp.header("content-length") is None
        assert resp.header("connection") == "close"
        assert resp.body == b"one,two" and r.closed


def test_stream_with_known_or_app_declared_length(serve, http):
    async def gen(parts):
        for p in parts:
            yield p

    async def app(req):
        if req.target == "/known":
            return Response(200, body=StreamBody(gen([b"ab", b"cd"]), length=4))
        if req.target == "/declared":  # the app's own Content-Length is trusted
            return Response(200, [("content-length", "4")], StreamBody(gen([b"ab", b"cd"])))
        if req.target == "/stale":  # a stale Content-Length is replaced by the body's length
            return Response(200, [("content-length", "99")], b"abc")
        if req.target == "/short":
            return Response(200, body=StreamBody(gen([b"ab"]), length=4))
        return Response(200, body=StreamBody(gen([b"abc", b"defg"]), length=4))

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET /known HTTP/1.1\r\nHost: x\r\n\r\nGET /declared HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /stale HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        a, b, c = r.response(), r.response(), r.response()
        assert (a.body, a.header("content-length")) == (b"abcd", "4")
        assert (b.body, b.header("content-length")) == (b"abcd", "4")
        assert (c.body, c.all("content-length")) == (b"abc", ["3"])
    for target in (b"/short", b"/long"):
        with srv.connect() as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\nGET /known HTTP/1.1\r\nHost: x\r\n\r\n"
                      % target)
            r = http.Reader(s)
            assert r.at_eof()  # framing broken: the connection is closed, never reused
            assert b"/known" not in r.buf and r.buf.count(b"HTTP/1.1 200") == 1
            if target == b"/long":
                assert r.buf.endswith(b"\r\n\r\nabcd")


def test_stream_error_midway_closes_the_connection(serve, http, caplog):
    async def gen():
        yield b"partial"
        raise RuntimeError("upstream died")

    async def app(req):
        return Response(200, body=StreamBody(gen()))

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        assert r.at_eof()
        assert b"partial" in r.buf and not r.buf.endswith(b"0\r\n\r\n")
    assert "upstream died" in caplog.text


def test_streamed_response_back_pressure(serve, http):
    produced = [0]
    total = 32 * 1024 * 1024
    chunk = b"x" * 65536

    async def gen():
        while produced[0] < total:
            produced[0] += len(chunk)
            yield chunk

    async def app(req):
        return Response(200, body=StreamBody(gen(), length=total))

    srv = serve(app)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    with s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = len(s.recv(65536))
        time.sleep(0.5)
        assert produced[0] < total // 2, "the stream ran ahead of a client that does not read"
        while got < total:
            data = s.recv(1 << 20)
            assert data
            got += len(data)
    assert produced[0] == total


def _file_body(path: str, offset: int = 0, length: int | None = None) -> FileBody:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    return FileBody(fd, offset, size - offset if length is None else length)


@pytest.mark.parametrize("loop", LOOPS)
def test_big_file_goes_out_with_sendfile_byte_exact(serve, http, loop, tmp_path, monkeypatch):
    data = os.urandom(3 * 1024 * 1024 + 11)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    calls = []
    real_sendfile = os.sendfile

    def spy(*args):
        calls.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", spy)
    bodies = []

    async def app(req):
        if req.target == "/range":
            body = _file_body(str(path), 1000, 2 * 1024 * 1024)
        else:
            body = _file_body(str(path))
        bodies.append(body)
        return Response(200, [("content-type", "application/octet-stream")], body)

    srv = serve(app, loop=loop)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /range HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        full, part = r.response(), r.response()
        head = r.response(head_request=True)
    assert full.body == data
    assert part.body == data[1000:1000 + 2 * 1024 * 1024]
    assert head.header("content-length") == str(len(data))
    assert calls, "sendfile was not used"
    srv.wait_records(3)
    assert all(b._closed for b in bodies)  # descriptors closed


def test_small_file_and_sendfile_disabled(serve, http, tmp_path, monkeypatch):
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello, world\n")
    big = tmp_path / "big.bin"
    data = os.urandom(300_000)
    big.write_bytes(data)

    def forbidden(*args):
        raise AssertionError("sendfile used")

    monkeypatch.setattr(os, "sendfile", forbidden)

    async def app(req):
        return Response(200, body=_file_body(str(small if req.target == "/s" else big)))

    srv = serve(app)
    srv.manager.use_sendfile = False
    with srv.connect() as s:
        s.sendall(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        assert r.response().body == b"hello, world\n"
        assert r.response().body == data


def test_sendfile_falls_back_when_the_file_cannot_be_sent(serve, http, tmp_path, monkeypatch):
    import errno

    data = os.urandom(200_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    def refuse(*args):
        raise OSError(errno.EINVAL, "not supported")

    monkeypatch.setattr(os, "sendfile", refuse)

    async def app(req):
        return Response(200, body=_file_body(str(path)))

    srv = serve(app)
    assert http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0].body == data


def test_file_shorter_than_announced_closes(serve, http, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100_000)

    async def app(req):
        return Response(200, body=_file_body(str(path), 0, 200_000))

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = http.Reader(s)
        assert r.at_eof()
        assert r.buf.count(b"x") == 100_000


def test_bytes_body_subclass_and_empty(serve, http):
    async def app(req):
        return Response(200, body=BytesBody(b""))

    srv = serve(app)
    resp = http.exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert resp.header("content-length") == "0" and resp.body == b""
