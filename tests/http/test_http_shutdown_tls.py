"""Graceful shutdown, and the same protocol over TLS."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from ocsi.http import FileBody, Request, Response
from ocsi.http.limits import Limits

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


def _wait(cond, timeout=3.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


@pytest.mark.parametrize("loop", LOOPS)
def test_shutdown_closes_idle_and_finishes_in_flight(serve, http, loop):
    async def app(req):
        if req.target == "/slow":
            await asyncio.sleep(0.4)
        return Response(200, body=req.target.encode())

    srv = serve(app, loop=loop)
    idle = srv.connect()
    busy = srv.connect()
    with idle, busy:
        idle.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        ri = http.Reader(idle)
        assert ri.response().body == b"/first"
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _wait(lambda: srv.run(lambda: srv.manager.in_flight) == 1)
        t0 = time.monotonic()
        srv.run(lambda: srv.server.close())
        fut = asyncio.run_coroutine_threadsafe(srv.manager.shutdown(5.0), srv.loop)
        assert ri.at_eof(1.0) and ri.buf == b""  # idle: closed at once, no response
        assert time.monotonic() - t0 < 0.3
        rb = http.Reader(busy)
        resp = rb.response()
        assert resp.body == b"/slow" and resp.header("connection") == "close"
        assert rb.at_eof(2.0) and b"/after" not in rb.buf  # pipelined request not started
        fut.result(3)
        assert time.monotonic() - t0 < 2.0
    assert srv.run(lambda: (srv.manager.active, srv.manager.in_flight)) == (0, 0)


def test_shutdown_timeout_aborts_what_is_left(serve, http):
    cancelled = threading.Event()

    async def app(req):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _wait(lambda: srv.run(lambda: srv.manager.in_flight) == 1)
        t0 = time.monotonic()
        srv.call(srv.manager.shutdown(0.3))
        elapsed = time.monotonic() - t0
        assert 0.25 < elapsed < 2.0
        r = http.Reader(s)
        assert r.at_eof(1.0) and r.buf == b""
    assert cancelled.is_set()
    assert srv.run(lambda: srv.manager.active) == 0


def test_shutdown_with_no_connection_returns_at_once(serve):
    async def app(req):
        return Response(200)

    srv = serve(app)
    t0 = time.monotonic()
    srv.call(srv.manager.shutdown(None))
    assert time.monotonic() - t0 < 0.5


def test_new_connection_during_shutdown_gets_503(serve, http):
    async def app(req):
        await asyncio.sleep(0.5)
        return Response(200)

    srv = serve(app)
    with srv.connect() as busy:
        busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _wait(lambda: srv.run(lambda: srv.manager.in_flight) == 1)
        fut = asyncio.run_coroutine_threadsafe(srv.manager.shutdown(None), srv.loop)
        with srv.connect() as late:  # the listener is still open in this test
            late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert http.Reader(late).response().status == 503
        assert http.Reader(busy).response().status == 200
        fut.result(3)


# -- TLS -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=30)
    return str(crt), str(key)


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_keep_alive_bodies_and_files(serve, http, cert, loop, tmp_path, monkeypatch):
    from ocsi.http.tls import server_context

    def no_sendfile(*a):
        raise AssertionError("sendfile on TLS")

    monkeypatch.setattr(os, "sendfile", no_sendfile)
    data = os.urandom(1024 * 1024 + 3)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[Request] = []

    async def app(req):
        seen.append(req)
        if req.target == "/file":
            fd = os.open(path, os.O_RDONLY)
            return Response(200, body=FileBody(fd, 0, len(data)))
        body = await req.body.read()
        return Response(200, body=b"got %d" % len(body))

    srv = serve(app, Limits(), loop=loop, ssl=server_context(*cert))
    ctx = ssl.create_default_context(cafile=cert[0])
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() in (None, "http/1.1")
            r = http.Reader(s)
            s.sendall(b"GET /file HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert r.response().body == data
            s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n\r\n")
            assert r.response().body == b"got 5"
    assert all(req.secure for req in seen) and seen[0].scheme == "https"
    recs = srv.wait_records(2)
    assert all(rec.secure for rec in recs) and recs[0].bytes_sent == len(data)
