"""HTTP/3 over QUIC (``<port protocol="HTTPS" http3="true">``): real servers on 127.0.0.1, the
aioquic client of ``ocsi.testing``; streams through the same pipeline and access log as
HTTP/1.1 and HTTP/2, flow control both ways, resets, Alt-Svc on the TCP answers, a certificate
per host by SNI, GOAWAY on reload and shutdown, a flood of junk datagrams, workers."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("aioquic")

from cryptography import x509  # noqa: E402

from ocsi.testing import H2Client, H3Client, assert_config_error, authority_and_certificate  # noqa: E402

from ocsi.testing import free_port  # noqa: E402

from .conftest import BASE  # noqa: E402
from .pebble import needs_pebble, pebble  # noqa: E402,F401 - the fixture

BIG = bytes(range(256)) * 8192  # 2 MiB
H3_NO_ERROR = 0x100


def _pki(tmp: Path, *names: str) -> tuple[str, str, str]:
    """(CA file, certificate, key) for ``names``, signed by a CA of the test's own."""
    ca, cert, key = authority_and_certificate(names or ("localhost", "127.0.0.1"))
    stem = names[0] if names else "localhost"
    (tmp / f"{stem}-ca.pem").write_bytes(ca)
    (tmp / f"{stem}.crt").write_bytes(cert)
    (tmp / f"{stem}.key").write_bytes(key)
    return str(tmp / f"{stem}-ca.pem"), str(tmp / f"{stem}.crt"), str(tmp / f"{stem}.key")


def _doc(exts: str, cert: str, key: str, body: str, extra: str = "") -> str:
    return ('<ocsigen><server><port protocol="HTTPS" http3="true">127.0.0.1:{port}</port>'
            f"<ssl><certificate>{cert}</certificate><privatekey>{key}</privatekey></ssl>"
            "<logdir>{tmp}/log</logdir><commandpipe>{tmp}/ocsi.cmd</commandpipe>"
            f"<accesslogformat>json</accesslogformat>{extra}"
            f"{BASE.format(exts=exts)}"
            '<extension findlib-package="ocsi-ext-staticmod"/>'
            f"{body}</server></ocsigen>")


@pytest.fixture
def h3(ocsi_server, exts_path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A server with HTTP/3 on its HTTPS port: /files/ (static), /slow, and echo for the rest."""
    ca, cert, key = _pki(tmp_path)
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(BIG)
    (www / "small.txt").write_bytes(b"x" * 100)
    srv = ocsi_server(_doc(exts_path, cert, key,
                           f'<host><site path="files"><static dir="{www}"/></site>'
                           '<slow seconds="1.5"/><echo/></host>',
                           "<maxrequestbodysize>4MiB</maxrequestbodysize>"), full=True)
    srv.ca = ca
    return srv


def _access(srv) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in srv.log("access").splitlines() if line.strip()]


def _wait(condition, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout:g} s")


def test_get_through_the_pipeline_with_the_access_line(h3):
    with H3Client(h3.port, cafile=h3.ca) as c:  # the certificate is verified
        r = c.get("/files/small.txt")
        assert r.status == 200 and r.body == b"x" * 100
        assert r.header("content-length") == "100" and r.header("server")
        assert r.header("alt-svc") is None  # already on HTTP/3
        r = c.get("/echo?q=1")
        assert r.status == 200 and r.body.startswith(b"GET /echo?q=1 ")
        assert f"port={h3.port}".encode() in r.body and b"host=localhost" in r.body
        # (no HEAD: aioquic's client checks Content-Length against the DATA of any answer)
    with H3Client(h3.port, cafile=h3.ca) as c:  # aioquic refuses a malformed head itself
        bad = c.request("/echo", "PATCH", headers=[("x-bad", "a\x00b")])
        assert bad.status == 0 and bad.reset == 0x10E  # H3_MESSAGE_ERROR
    _wait(lambda: len(_access(h3)) >= 2)
    lines = _access(h3)
    assert {line["protocol"] for line in lines} == {"HTTP/3"}
    assert [line["status"] for line in lines] == [200, 200]
    assert lines[0]["tls"] is True and lines[0]["bytes_sent"] == 100
    assert lines[0]["tls_version"] == "TLSv1.3"


def test_a_streamed_post_and_a_body_over_the_limit(h3):
    chunks = [bytes([65 + i]) * 40_000 for i in range(10)]  # 400 kB, beyond a stream's window
    with H3Client(h3.port, cafile=h3.ca) as c:
        r = c.request("/upload", "POST", chunks, pause=0.01)
        assert r.status == 200
        head, _, echoed = r.body.partition(b"\n")
        assert head.endswith(b"len=400000") and echoed == b"".join(chunks)
        too_big = c.request("/upload", "POST", [b"z" * 1_000_000] * 5)
        assert too_big.status == 413
        assert c.get("/after").status == 200  # the connection goes on


def test_a_large_file_with_quic_flow_control(h3):
    with H3Client(h3.port, cafile=h3.ca) as c:
        r = c.get("/files/big.bin")
        assert r.status == 200 and r.header("content-length") == str(len(BIG))
        assert r.body == BIG


def test_many_concurrent_streams_on_one_connection(h3):
    with H3Client(h3.port, cafile=h3.ca) as c:
        # more than the 100 the server allows at once: QUIC holds the rest back until streams end
        got = c.gather([c.fetch(f"/n{i}") for i in range(150)])
        assert [r.status for r in got] == [200] * 150
        assert all(r.body.startswith(f"GET /n{i} ".encode()) for i, r in enumerate(got))
    _wait(lambda: len(_access(h3)) >= 150)


def test_a_reset_stream_leaves_the_connection_serving(h3):
    with H3Client(h3.port, cafile=h3.ca) as c:
        r = c.request("/files/big.bin", reset_after=1)
        assert r.status == 200 and 0 < len(r.body) < len(BIG)
        assert c.get("/after-reset").body.startswith(b"GET /after-reset ")
        _wait(lambda: h3.server.manager.in_flight == 0)


def test_alt_svc_on_the_http1_and_http2_answers(h3):
    want = f'h3=":{h3.port}"; ma=86400'
    ctx = ssl.create_default_context(cafile=h3.ca)
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", h3.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /files/small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert f"alt-svc: {want}".lower().encode() in data.lower()
    c2 = H2Client(h3.port)
    sid = c2.request("/files/small.txt")
    head, _ = c2.responses(1)[sid]
    assert head[b"alt-svc"] == want.encode()


def test_each_host_gets_its_certificate_by_sni(ocsi_server, exts_path, tmp_path):
    ca, cert, key = _pki(tmp_path)
    a_ca, a_cert, a_key = _pki(tmp_path, "a.test")
    srv = ocsi_server(_doc(exts_path, cert, key,
                           f'<host hostfilter="a.test" certificate="{a_cert}" privatekey="{a_key}">'
                           '<say text="host a"/></host><host><say text="default"/></host>'),
                      full=True)
    with H3Client(srv.port, server_name="a.test", cafile=a_ca) as c:
        assert c.get("/").body == b"host a"
        names = c.peer_certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        assert names == ["a.test"]
    with H3Client(srv.port, server_name="localhost", cafile=ca) as c:
        assert c.get("/").body == b"default"


def test_reload_sends_goaway_and_the_stream_in_flight_finishes(h3):
    c = H3Client(h3.port, cafile=h3.ca)
    try:
        slow = asyncio.run_coroutine_threadsafe(c.fetch("/slow"), c.loop)
        _wait(lambda: h3.server.manager.in_flight == 1)
        h3.command("reload")
        r = slow.result(20)
        assert (r.status, r.body) == (200, b"slow"), r
        closed = c.wait_terminated()
        assert closed is not None and closed.error_code == H3_NO_ERROR
    finally:
        c.close()
    with H3Client(h3.port, cafile=h3.ca) as again:  # new connections are served
        assert again.get("/files/small.txt").status == 200


def test_shutdown_lets_the_stream_in_flight_finish(h3):
    c = H3Client(h3.port, cafile=h3.ca)
    try:
        slow = asyncio.run_coroutine_threadsafe(c.fetch("/slow"), c.loop)
        _wait(lambda: h3.server.manager.in_flight == 1)
        h3.stop(timeout=10)
        r = slow.result(20)
        assert r.status == 200 and r.body == b"slow"
        assert c.wait_terminated() is not None
    finally:
        c.close()
    assert h3.server.manager.active == 0


def test_a_flood_of_junk_datagrams_is_dropped_and_bounded(h3):
    rng = random.Random(25)
    endpoint = h3.server.quic[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    retries = 0
    try:
        for i in range(3000):
            size = rng.choice((1, 20, 200, 1200, 1350))
            data = bytearray(rng.randbytes(size))
            if i % 3 == 0 and size >= 20:  # a long header: Initial, version 1, junk after
                data[0] = 0xC0 | (data[0] & 0x0F)
                data[1:5] = b"\x00\x00\x00\x01"
                data[5] = 8
            try:
                sock.sendto(bytes(data), ("127.0.0.1", h3.port))
            except BlockingIOError:
                time.sleep(0.001)
            if i % 200 == 0:  # read what came back (Retry packets: no state on the server)
                try:
                    while sock.recv(2048):
                        retries += 1
                except BlockingIOError:
                    pass
    finally:
        sock.close()
    with H3Client(h3.port, cafile=h3.ca) as c:  # a real client is still served
        assert c.get("/files/small.txt").status == 200
        # junk carrying the live connection's ID, from another address: it does not decrypt
        cid = c.protocol._quic._peer_cid.cid
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forger:
            for _ in range(500):
                forger.sendto(bytes([0x40 | rng.randrange(64)]) + cid + rng.randbytes(60),
                              ("127.0.0.1", h3.port))
        assert c.get("/files/small.txt").status == 200
    assert endpoint.dropped > 0
    assert h3.server.manager.active <= 1  # no connection was created by junk
    assert len(set(endpoint._cids.values())) <= 1  # the real client's, if not closed yet


def test_asgi_applications_see_http_version_3(ocsi_server, exts_path, tmp_path):
    ca, cert, key = _pki(tmp_path)
    (tmp_path / "h3app.py").write_text(
        "async def app(scope, receive, send):\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': scope['http_version'].encode()})\n")
    srv = ocsi_server(_doc(exts_path, cert, key,
                           f'<findlib path="{tmp_path}"/><extension findlib-package="ocsi-ext-asgi"/>'
                           '<host><asgi app="h3app:app" lifespan="false"/></host>'), full=True)
    with H3Client(srv.port, cafile=ca) as c:
        assert c.get("/").body == b"3"


def test_http3_is_for_https_ports(ocsi_memory):
    assert_config_error(ocsi_memory, '<port http3="true">0</port>',
                        'http3="true" is for HTTPS ports', line=1)


def test_without_aioquic_the_attribute_names_the_extra(tmp_path):
    ca, cert, key = _pki(tmp_path)
    conf = tmp_path / "ocsi.conf"
    conf.write_text('<ocsigen><server>\n<port protocol="HTTPS" http3="true">8443</port>\n'
                    f"<ssl><certificate>{cert}</certificate><privatekey>{key}</privatekey></ssl>"
                    "</server></ocsigen>\n")
    hide = ("import sys; sys.modules['aioquic'] = None; sys.argv = ['ocsi', '--check', '-c', "
            f"{str(conf)!r}]; from ocsi.cli import main; sys.exit(main())")
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True,
                          timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"{conf}:2" in out and "aioquic" in out and "ocsi[http3]" in out
    ok = subprocess.run([sys.executable, "-m", "ocsi", "--check", "-c", str(conf)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_http3_is_served_by_worker_0_and_survives_its_restart(ocsi_process, exts_path, tmp_path):
    ca, cert, key = _pki(tmp_path)
    proc = ocsi_process(_doc(exts_path, cert, key, '<host><pid/></host>'), full=True,
                        args=["--workers", "2"])

    def h3_pid() -> int:
        with H3Client(proc.port, cafile=ca) as c:
            return int(c.get("/").body)

    pids = {h3_pid() for _ in range(6)}  # six connections: one process holds them all
    assert len(pids) == 1
    lines = _wait(lambda: [json.loads(x) for x in proc.log("access").splitlines()
                           if x.strip()][:6] or None)
    assert {(x["protocol"], x["worker"]) for x in lines} == {("HTTP/3", 0)}
    (first,) = pids
    os.kill(first, signal.SIGKILL)
    # the master restarts worker 0, which serves the UDP socket the master kept open

    def served_again() -> int | None:
        try:
            pid = h3_pid()
        except Exception:  # noqa: BLE001 - not yet restarted
            return None
        return pid if pid != first else None

    assert _wait(served_again, 30) != first


def test_upgrade_with_workers_hands_the_udp_socket_over(ocsi_process, exts_path, tmp_path):
    """The new master cannot bind the UDP port the old one's worker 0 serves: it is handed."""
    ca, cert, key = _pki(tmp_path)
    pidfile = tmp_path / "ocsi.pid"
    proc = ocsi_process(_doc(exts_path, cert, key, '<host><pid/></host>'), full=True,
                        args=["-p", str(pidfile), "--workers", "2"])

    def h3_pid() -> int:
        with H3Client(proc.port, cafile=ca) as c:
            return int(c.get("/").body)

    old = h3_pid()
    proc.command("upgrade")
    assert proc.wait(60) == 0  # the old master drained and left
    new_master = int(pidfile.read_text())
    try:
        assert _wait(lambda: (pid := h3_pid()) != old and pid, 30)
    finally:
        os.kill(new_master, signal.SIGTERM)
        _wait(lambda: not os.path.exists(f"/proc/{new_master}"), 30)


def test_a_body_nobody_reads_is_held_back_by_flow_control(h3):
    """/slow never reads its body: the client may not send much more than the body's buffer
    and one stream window, whatever it has to send."""
    from ocsi._http.quicconn import STREAM_WINDOW

    c = H3Client(h3.port, cafile=h3.ca)
    try:
        upload = asyncio.run_coroutine_threadsafe(
            c.fetch("/slow", "POST", [b"u" * 65536] * 48), c.loop)  # 3 MiB

        def body():  # type: ignore[no-untyped-def]
            for conn in h3.server.manager.connections:
                for stream in getattr(conn, "_streams", {}).values():
                    return stream.body
            return None

        held = _wait(body)
        _wait(lambda: held.received >= 256 * 1024)  # the body's buffer is full
        time.sleep(0.5)  # what more the client could send, it sends now
        assert held.received <= 256 * 1024 + 2 * STREAM_WINDOW
        assert upload.result(20).body == b"slow"
    finally:
        c.close()


def test_upgrade_hands_the_udp_socket_to_the_successor(ocsi_process, exts_path, tmp_path):
    ca, cert, key = _pki(tmp_path)
    pidfile = tmp_path / "ocsi.pid"
    proc = ocsi_process(_doc(exts_path, cert, key, "<host><pid/></host>"), full=True,
                        args=["-p", str(pidfile)])
    old = proc.proc.pid
    with H3Client(proc.port, cafile=ca) as c:
        assert int(c.get("/").body) == old
    r = subprocess.run([sys.executable, "-m", "ocsi", "upgrade", "-c", proc.config_path],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    assert proc.wait(30) == 0  # the old process left
    new = int(pidfile.read_text())
    try:
        assert new != old
        with H3Client(proc.port, cafile=ca) as c:  # the same UDP port, now the successor's
            assert int(c.get("/").body) == new
    finally:
        os.kill(new, signal.SIGTERM)
        _wait(lambda: not Path(f"/proc/{new}").exists()
              or Path(f"/proc/{new}/stat").read_text().split()[2] == "Z", 15)


def test_maxconnected_counts_quic_connections(ocsi_server, exts_path, tmp_path):
    ca, cert, key = _pki(tmp_path)
    srv = ocsi_server(_doc(exts_path, cert, key, '<host><say text="hi"/></host>',
                           "<maxconnected>1</maxconnected>"), full=True)
    with H3Client(srv.port, cafile=ca) as first:
        assert first.get("/").body == b"hi"
        # the second is not admitted: its handshake goes unanswered until it gives up
        with pytest.raises(ConnectionError):
            H3Client(srv.port, cafile=ca, idle_timeout=1.0)
        assert first.get("/").body == b"hi"
    assert srv.server.quic[0].dropped > 0


def test_an_idle_connection_is_closed_after_keepalivetimeout(ocsi_server, exts_path, tmp_path):
    ca, cert, key = _pki(tmp_path)
    srv = ocsi_server(_doc(exts_path, cert, key, '<host><say text="hi"/></host>',
                           "<keepalivetimeout>1</keepalivetimeout>"), full=True)
    with H3Client(srv.port, cafile=ca) as c:
        assert c.get("/").body == b"hi"
        closed = c.wait_terminated()
        assert closed is not None and closed.error_code == H3_NO_ERROR
    _wait(lambda: srv.server.manager.active == 0)


@needs_pebble
def test_an_acme_certificate_is_served_over_http3(ocsi_server, pebble, exts_path,  # noqa: F811
                                                   tmp_path):
    http, https = free_port(), free_port()
    ca = pebble(http, https)
    srv = ocsi_server(
        f"<ocsigen><server>\n<port>127.0.0.1:{http}</port>\n"
        f'<port protocol="HTTPS" http3="true">127.0.0.1:{https}</port>\n'
        "<logdir>{tmp}/log</logdir><datadir>{tmp}/data</datadir>"
        "<commandpipe>{tmp}/ocsi.cmd</commandpipe>\n"
        f'<acme email="admin@example.org" directory="{ca.directory}" ca="{ca.ca_file}" '
        'challenges="http-01" retry="1"/>\n'
        f"{BASE.format(exts=exts_path)}\n"
        '<host hostfilter="one.example.com" acme="true"><say text="one"/></host>\n'
        "</server></ocsigen>", full=True)
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(ca.root())

    def served() -> bytes | None:
        try:
            with H3Client(https, server_name="one.example.com", cafile=str(root),
                          idle_timeout=2.0, timeout=10) as c:
                return c.get("/").body
        except (ConnectionError, TimeoutError):  # refused until the certificate is there
            return None

    assert _wait(served, 60) == b"one"
    assert srv.server.quic
