"""HTTP/2 over TLS (ALPN): multiplexed streams through the same pipeline, request bodies,
flow control with a small client window, resets, protocol errors, curl."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
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
        f"<logdir>{{tmp}}/log</logdir><commandpipe>{{tmp}}/ocsi.cmd</commandpipe>"
        f"{BASE.format(exts=exts_path)}"
        '<extension findlib-package="ocsi-ext-staticmod"/>'
        f'<host><site path="files"><static dir="{www}"/></site><slow seconds="1.5"/><echo/></host>'
        '</server></ocsigen>',
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


def test_small_bodies_go_in_one_frame_and_larger_ones_in_pieces(h2server, tmp_path):
    """Files just written (read from disk each time), at the one-read limit and past it, an
    empty file, and HEAD: whole bodies, the right lengths, no body for HEAD."""
    sizes = {"empty": 0, "small": 100, "limit": 16_384, "over": 16_385, "two": 40_000}
    for name, size in sizes.items():
        (tmp_path / "www" / name).write_bytes(bytes(i % 251 for i in range(size)))
    c = Client(h2server.port)
    sids = {name: c.request(f"/files/{name}") for name in sizes}
    head = c.request("/files/small", "HEAD")
    got = c.responses(len(sizes) + 1)
    for name, size in sizes.items():
        fields, body = got[sids[name]]
        assert fields[b":status"] == b"200", name
        assert fields[b"content-length"] == str(size).encode(), name
        assert body == bytes(i % 251 for i in range(size)), name
    fields, body = got[head]
    assert fields[b":status"] == b"200" and fields[b"content-length"] == b"100" and body == b""


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
    from ocsi._http.h2conn import MAX_EARLY_RESETS

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


def _read_events(c: H2Client, quiet: float, once: bool = False) -> list[h2.events.Event]:
    """What the server sends until it has been quiet for ``quiet`` seconds (``once``: the
    first read's events)."""
    events: list[h2.events.Event] = []
    c.sock.settimeout(quiet)
    try:
        while data := c.sock.recv(65536):
            events += c.h2.receive_data(data)
            c.flush()
            if once:
                break
    except (TimeoutError, socket.timeout):
        pass
    c.sock.settimeout(10)
    return events


def test_a_body_nobody_reads_holds_back_its_stream_only(h2server):
    # /slow sleeps without reading: its client may send a window and the body's buffer, not
    # the megabyte, while another stream on the same connection is answered at once
    c = Client(h2server.port)
    sid = c.h2.get_next_available_stream_id()
    c.h2.send_headers(sid, [(":method", "POST"), (":path", "/slow"), (":scheme", "https"),
                            (":authority", "localhost")])
    body, sent = b"u" * 1_000_000, 0
    while True:
        room = min(c.h2.local_flow_control_window(sid), c.h2.max_outbound_frame_size, len(body) - sent)
        if room <= 0:
            # below the body's buffer the server must give credit back: wait for it however
            # slow the machine is; past it, half a second of silence means it stopped
            if not _read_events(c, 0.5 if sent >= 256 * 1024 else 10, once=True):
                break  # quiet: the server stopped giving this stream credit
            continue
        c.h2.send_data(sid, body[sent:sent + room])
        sent += room
        c.flush()
    assert 256 * 1024 <= sent < len(body)
    fast = c.request("/fast")
    got = c.responses(1)
    assert b"/fast" in got[fast][1]
    # /slow answers without reading; the rest of its body is not wanted any more
    events = _read_events(c, 3)
    ended = [e for e in events if isinstance(e, h2.events.StreamEnded) and e.stream_id == sid]
    resets = [e for e in events if isinstance(e, h2.events.StreamReset) and e.stream_id == sid]
    assert ended and resets and resets[0].error_code == h2.errors.ErrorCodes.NO_ERROR


def _frames(data: bytes) -> list:  # type: ignore[type-arg]
    """The frames in ``data``, parsed by hand: h2's own state machine stops at a GOAWAY."""
    from hyperframe.frame import Frame

    frames = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9:9 + length]))
        frames.append(frame)
        data = data[9 + length:]
    return frames


def _assert_drained(data: bytes, slow: int) -> None:
    """One GOAWAY (NO_ERROR, last stream ``slow``), then ``slow``'s whole answer."""
    from hyperframe.frame import DataFrame, GoAwayFrame

    frames = _frames(data)
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert len(goaway) == 1 and goaway[0].error_code == 0 and goaway[0].last_stream_id == slow
    after = frames[frames.index(goaway[0]):]
    body = [f for f in after if isinstance(f, DataFrame) and f.stream_id == slow]
    assert b"".join(f.data for f in body) == b"slow" and "END_STREAM" in body[-1].flags


def test_shutdown_sends_goaway_and_finishes_the_streams_in_flight(h2server):
    c = Client(h2server.port)
    slow = c.request("/slow")
    stopper = threading.Thread(target=h2server.stop, kwargs={"timeout": 10})
    time.sleep(0.3)  # /slow is in flight (it takes 1.5 s)
    stopper.start()
    data = c.read_until_closed()
    stopper.join(20)
    _assert_drained(data, slow)


@pytest.mark.parametrize("command", ["reload", "ssl:reload"])
def test_a_reload_sends_goaway_and_the_next_connection_is_served(h2server, command):
    c = Client(h2server.port)
    slow = c.request("/slow")
    time.sleep(0.3)  # /slow is in flight
    h2server.command(command)
    _assert_drained(c.read_until_closed(), slow)
    fresh = Client(h2server.port)
    sid = fresh.request("/after")
    assert b"/after" in fresh.responses(1)[sid][1]


@pytest.mark.parametrize("attack", ["continuation", "hpack-bomb"])
def test_header_attacks_close_the_connection(h2server, attack):
    import hpack
    c = Client(h2server.port)
    sid = c.h2.get_next_available_stream_id()
    enc = hpack.Encoder()
    block = enc.encode([(":method", "GET"), (":path", "/x"), (":scheme", "https"),
                        (":authority", "localhost")])
    frames = b""
    if attack == "continuation":
        # HEADERS without END_HEADERS, then CONTINUATION frames that never end (CVE-2024-27316)
        frames += _frame(0x1, 0x0, sid, block)
        frames += _frame(0x9, 0x0, sid, enc.encode([("x-a", "b" * 100)])) * 2000
    else:
        # one 4 KB field enters the dynamic table, then 100 one-byte references to it: a small
        # block that decodes to 400 KB, past the header-list limit
        big = enc.encode([("x-big", "v" * 4000)])
        frames += _frame(0x1, 0x4, sid, block + big + b"\xbe" * 100)
    try:
        c.sock.sendall(frames)
    except (ssl.SSLError, ConnectionError):
        pass
    terminated = [e for e in c.until_closed() if isinstance(e, h2.events.ConnectionTerminated)]
    expected = {"continuation": h2.errors.ErrorCodes.PROTOCOL_ERROR,
                "hpack-bomb": h2.errors.ErrorCodes.ENHANCE_YOUR_CALM}[attack]
    assert terminated and terminated[0].error_code == expected
    fresh = Client(h2server.port)
    sid = fresh.request("/fine")
    assert b"/fine" in fresh.responses(1)[sid][1]


def _frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + sid.to_bytes(4, "big") + payload


@pytest.fixture
def h2c_server(ocsi_server, exts_path):  # type: ignore[no-untyped-def]
    def start(h2c: bool):  # type: ignore[no-untyped-def]
        flag = ' h2c="true"' if h2c else ""
        return ocsi_server(
            f'<ocsigen><server><port{flag}>127.0.0.1:{{port}}</port>'
            f"<logdir>{{tmp}}/log</logdir>{BASE.format(exts=exts_path)}"
            "<host><echo/></host></server></ocsigen>", full=True)
    return start


def test_h2c_with_prior_knowledge_when_the_port_allows_it(h2c_server):
    srv = h2c_server(True)
    c = Client(srv.port, tls=False)
    sids = [c.request(f"/c{i}", "POST", b"x" * 100) for i in range(3)]
    got = c.responses(3)
    assert all(got[sid][1].startswith(f"POST /c{i} ".encode()) for i, sid in enumerate(sids))
    assert "/c2 200" in srv.wait_log("access", "/c2")
    assert srv.get("/plain").status == 200  # HTTP/1.1 still answers on the same port
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                              "%{http_version} %{http_code}", f"http://127.0.0.1:{srv.port}/k"],
                             capture_output=True, text=True, timeout=30)
        assert out.stdout == "2 200"


def test_h2c_is_off_by_default_and_only_opens_a_connection(h2c_server):
    srv = h2c_server(False)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    assert srv.raw(preface).startswith(b"HTTP/1.1 505 ")
    on = h2c_server(True)
    # after an HTTP/1.1 exchange the preface is an ordinary bad request
    answer = on.raw(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + preface)
    assert answer.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 505 " in answer


def test_an_idle_connection_that_never_reads_is_let_go(h2server):
    """A client that keeps an HTTP/2 connection and never reads (a browser's preconnection)
    must not hold the connection open after its GOAWAY: over TLS asyncio waits for the
    client's close_notify (up to 30 s) before it reports the connection lost, so the server
    aborts it after a short linger."""
    import socket
    import ssl
    import time

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", h2server.port))
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    assert tls.selected_alpn_protocol() == "h2"
    before = _open(h2server)
    assert before >= 1
    h2server.command("reload")  # GOAWAY to every HTTP/2 connection; this one has no stream
    deadline = time.monotonic() + 15  # the linger is 2 s; asyncio's own wait would be 30 s
    while _open(h2server) >= before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open(h2server) < before
    tls.close()


def _open(srv) -> int:  # type: ignore[no-untyped-def]
    """Connections the server holds (read on its own loop)."""
    async def count() -> int:
        return srv.server.manager.active
    return srv.call(count)


@pytest.mark.parametrize("field", [(b"connection", b"close"), (b"Accept", b"*/*"),
                                   (b"te", b"gzip"), (b"x-a", b" padded"), (b":path", b"/twice"),
                                   (b"host", b"elsewhere")])
def test_a_malformed_request_is_reset_and_the_connection_goes_on(h2server, field):
    # RFC 9113 §8.1.1: a malformed request is a stream error (PROTOCOL_ERROR); the other streams
    # of the connection are not its victims
    c = Client(h2server.port, strict=False)
    sid = c.request("/x", headers=[field])
    resets: list[h2.events.StreamReset] = []
    deadline = time.monotonic() + 10
    while not resets and time.monotonic() < deadline:
        resets = [e for e in _read_events(c, 1, once=True)
                  if isinstance(e, h2.events.StreamReset) and e.stream_id == sid]
    assert resets and resets[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    ok = c.request("/after-malformed")
    assert b"/after-malformed" in c.responses(1)[ok][1]


def test_json_access_lines_say_which_tls_version_each_protocol_negotiated(ocsi_server, exts_path,
                                                                           tmp_path: Path):
    import http.client
    import json

    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    srv = ocsi_server(
        f'<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>'
        f"<ssl><certificate>{tmp_path}/c.pem</certificate><privatekey>{tmp_path}/k.pem</privatekey></ssl>"
        f"<logdir>{{tmp}}/log</logdir><accesslogformat>json</accesslogformat>"
        f"{BASE.format(exts=exts_path)}<host><echo/></host></server></ocsigen>", full=True)
    c = Client(srv.port)
    sid = c.request("/over-h2")
    assert b"/over-h2" in c.responses(1)[sid][1]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    one = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
    one.request("GET", "/over-h1")
    assert one.getresponse().status == 200
    srv.wait_log("access", "/over-h1")
    lines = {json.loads(x)["target"]: json.loads(x) for x in srv.log("access").splitlines()}
    assert lines["/over-h2"]["protocol"] == "HTTP/2" and lines["/over-h2"]["tls_version"] == "TLSv1.3"
    assert lines["/over-h1"]["protocol"] == "HTTP/1.1" and lines["/over-h1"]["tls_version"] == "TLSv1.2"
