"""HTTP/2 over TLS (ALPN): multiplexed streams through the same pipeline, request bodies,
flow control with a small client window, resets, protocol errors, curl."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import h2.errors
import h2.events
import pytest

from ocsi.testing import H2Client
from ocsi.tls import self_signed

from .conftest import BASE


@pytest.fixture
def h2server(ocsi_server, exts_path, tmp_path: Path):  # type: ignore[no-untyped-def]
    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    return ocsi_server(
        f'<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>'
        f"<ssl><certificate>{tmp_path}/c.pem</certificate><privatekey>{tmp_path}/k.pem</privatekey></ssl>"
        f"<logdir>{{tmp}}/log</logdir>{BASE.format(exts=exts_path)}"
        '<extension findlib-package="ocsi-ext-staticmod"/>'
        f'<host><site path="files"><static dir="{www}"/></site><echo/></host></server></ocsigen>',
        full=True)


Client = H2Client


def test_multiplexed_streams_through_the_pipeline(h2server):
    c = Client(h2server.port)
    sids = [c.request(f"/n{i}") for i in range(10)]
    got = c.responses(10)
    for i, sid in enumerate(sids):
        head, body = got[sid]
        assert head[b":status"] == b"200" and body.startswith(f"GET /n{i} ".encode())
    line = h2server.wait_log("access", "/n9")
    assert "/n9" in line


def test_request_body_and_big_file_with_a_small_client_window(h2server):
    c = Client(h2server.port, window=16384)
    post = c.request("/upload", "POST", b"b" * 50_000)
    big = c.request("/files/big.bin")
    got = c.responses(2)
    assert b"len=50000" in got[post][1]
    head, body = got[big]
    assert head[b"content-length"] == b"2097152" and body == bytes(range(256)) * 8192


def test_a_reset_stream_and_a_protocol_error_leave_the_server_serving(h2server):
    c = Client(h2server.port)
    sid = c.request("/files/big.bin")
    c.h2.reset_stream(sid)
    c.flush()
    again = c.request("/after-reset")
    assert b"/after-reset" in c.responses(1)[again][1]
    bad = Client(h2server.port)
    bad.sock.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00X")  # DATA on stream 0
    events = bad.until_closed()
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    c2 = Client(h2server.port)
    sid = c2.request("/still")
    assert b"/still" in c2.responses(1)[sid][1]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_http2(h2server):
    out = subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          f"https://127.0.0.1:{h2server.port}/files/big.bin"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "2 200"


def test_http11_over_tls_is_unchanged(h2server):
    import http.client
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", h2server.port, context=ctx, timeout=10)
    conn.request("GET", "/one")
    r = conn.getresponse()
    assert r.status == 200 and r.version == 11 and b"/one" in r.read()


def test_rapid_reset_closes_the_connection(h2server):
    from ocsi.http.h2conn import MAX_EARLY_RESETS

    c = Client(h2server.port)
    try:
        for _ in range(MAX_EARLY_RESETS + 10):  # open and cancel in one write, as fast as it goes
            sid = c.h2.get_next_available_stream_id()
            c.h2.send_headers(sid, [(":method", "GET"), (":path", "/x"), (":scheme", "https"),
                                    (":authority", "localhost")], end_stream=True)
            c.h2.reset_stream(sid)
            c.flush()
    except (ssl.SSLError, ConnectionError):
        pass
    terminated = [e for e in c.until_closed() if isinstance(e, h2.events.ConnectionTerminated)]
    assert terminated and terminated[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert "reset more than" in h2server.wait_log("warnings", "reset more than")
    fresh = Client(h2server.port)
    sid = fresh.request("/fine")
    assert b"/fine" in fresh.responses(1)[sid][1]


def test_an_asgi_application_over_http2(ocsi_server, tmp_path):
    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    (tmp_path / "h2app.py").write_text('''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for piece in (scope["http_version"].encode(), b" ", str(len(body)).encode()):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
''')
    srv = ocsi_server(
        f'<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>'
        f"<ssl><certificate>{tmp_path}/c.pem</certificate><privatekey>{tmp_path}/k.pem</privatekey></ssl>"
        f'<logdir>{{tmp}}/log</logdir><findlib path="{tmp_path}"/>'
        '<extension findlib-package="ocsi-ext-asgi"/>'
        '<host><asgi app="h2app:app" lifespan="false"/></host></server></ocsigen>', full=True)
    c = Client(srv.port)
    sids = [c.request("/up", "POST", b"p" * 20_000) for _ in range(3)]  # within the window
    got = c.responses(3)
    assert [got[sid][1] for sid in sids] == [b"2 20000"] * 3


def test_a_ping_flood_from_a_client_that_does_not_read_is_dropped(h2server):
    c = Client(h2server.port)
    ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"  # PING, 17 bytes
    sent = 0
    try:
        for _ in range(2000):  # at most 34 MB, never reading the acknowledgements
            c.sock.sendall(ping * 1000)
            sent += 1
    except (ssl.SSLError, ConnectionError, TimeoutError):
        pass
    assert sent < 2000  # the server stopped the flood
    assert "does not read" in h2server.wait_log("warnings", "does not read")
    fresh = Client(h2server.port)
    sid = fresh.request("/fine")
    assert b"/fine" in fresh.responses(1)[sid][1]
