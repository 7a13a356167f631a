"""Graceful shutdown, and the same protocol over TLS."""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import os
import socket
import ssl
import threading
import time

import pytest

from ocsi._http import FileBody, Request, Response
from ocsi._http.limits import Limits

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


def _wait(cond, timeout=3.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


@pytest.mark.parametrize("loop", LOOPS)
def test_shutdown_closes_idle_and_finishes_in_flight(serve, http, loop):
    release = threading.Event()  # the in-flight request ends when the test says so

    async def app(req):
        if req.target == "/slow":
            while not release.is_set():
                await asyncio.sleep(0.01)
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
        srv.run(lambda: srv.server.close())
        fut = asyncio.run_coroutine_threadsafe(srv.manager.shutdown(30.0), srv.loop)
        # the idle connection is closed while the other request is still being answered
        assert ri.at_eof(5.0) and ri.buf == b""
        assert not fut.done() and srv.run(lambda: srv.manager.in_flight) == 1
        release.set()
        rb = http.Reader(busy)
        resp = rb.response()
        assert resp.body == b"/slow" and resp.header("connection") == "close"
        assert rb.at_eof(5.0) and b"/after" not in rb.buf  # pipelined request not started
        fut.result(5)  # the drain ends with the last response, long before its 30 s
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
        # a configured timeout: it must have been waited for, and must have ended the wait
        # (the request would run 30 s); the ceiling is generous for a slow machine
        assert 0.3 <= elapsed < 10
        r = http.Reader(s)
        assert r.at_eof(1.0) and r.buf == b""
    assert cancelled.is_set()
    assert srv.run(lambda: srv.manager.active) == 0


def test_shutdown_with_no_connection_returns_at_once(serve):
    async def app(req):
        return Response(200)

    srv = serve(app)
    # no timeout at all: with nothing to drain it returns (else srv.call gives up)
    srv.call(srv.manager.shutdown(None), timeout=10)
    assert srv.run(lambda: (srv.manager.active, srv.manager.closing)) == (0, True)


def test_a_connection_accepted_during_shutdown_is_answered_and_closed(serve, http):
    """The server closes its listeners before draining, so the only such connection is one
    the loop accepted just before: its request is on its way, and is answered, not reset
    (what makes ``upgrade`` lose nothing)."""
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
            r = http.Reader(late).response()
            assert r.status == 200 and r.header("connection") == "close"
        assert http.Reader(busy).response().status == 200
        fut.result(3)


# -- TLS -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_context(tmp_path_factory):
    """A server SSLContext with a fresh self-signed certificate for localhost."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(d / "cert.pem"), str(d / "key.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_keep_alive_bodies_and_files(serve, http, tls_context, loop, tmp_path, monkeypatch):
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

    srv = serve(app, Limits(), loop=loop, ssl=tls_context)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
            r = http.Reader(s)
            s.sendall(b"GET /file HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert r.response().body == data
            s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n\r\n")
            assert r.response().body == b"got 5"
    assert all(req.secure for req in seen) and seen[0].scheme == "https"
    recs = srv.wait_records(2)
    assert all(rec.secure for rec in recs) and recs[0].bytes_sent == len(data)
