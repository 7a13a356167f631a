"""Automatic HTTPS against a real ACME CA (pebble): http-01 and tls-alpn-01 validated by
connections to the server under test, refused handshakes until the first certificate, plain
HTTP served meanwhile, a restart reusing the stored certificate, a name that fails, pebble's
random badNonce rejections."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from ocsi.testing import free_port

from .conftest import BASE
from .pebble import Pebble, needs_pebble, pebble  # noqa: F401 - the fixture

pytestmark = needs_pebble

#: Bound of every wait for a certificate (pebble issues in well under a second).
WAIT = 60.0


def _config(exts: str, ca: Pebble, http: int, https: int, hosts: str,
            challenges: str = "tls-alpn-01 http-01") -> str:
    return (f"<ocsigen><server>\n<port>127.0.0.1:{http}</port>\n"
            f'<port protocol="HTTPS">127.0.0.1:{https}</port>\n'
            "<logdir>{tmp}/log</logdir><datadir>{tmp}/data</datadir>"
            "<commandpipe>{tmp}/ocsi.cmd</commandpipe>\n"
            f'<acme email="admin@example.org" directory="{ca.directory}" ca="{ca.ca_file}" '
            f'challenges="{challenges}" retry="1"/>\n'
            f"{BASE.format(exts=exts)}\n{hosts}\n</server></ocsigen>")


def _host(names: str, text: str, attributes: str = "") -> str:
    return f'<host hostfilter="{names}" acme="true"{attributes}><say text="{text}"/></host>'


def _https_get(port: int, name: str, root: bytes | None, path: str = "/") -> bytes:
    """The body of ``GET /`` over HTTPS with SNI ``name``, the chain verified against
    ``root`` (pebble's) when given."""
    if root is not None:
        ctx = ssl.create_default_context(cadata=root.decode())
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def _http_get(port: int, name: str, path: str = "/") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _wait_certificate(port: int, name: str, ca: Pebble) -> float:
    """Seconds until a handshake for ``name`` verifies against pebble's root (bounded)."""
    started = time.monotonic()
    root = ca.root()
    while True:
        try:
            _https_get(port, name, root)
            return time.monotonic() - started
        except (ssl.SSLError, OSError):
            if time.monotonic() - started > WAIT:
                raise AssertionError(f"no certificate for {name} within {WAIT} s:\n{ca.log()[-3000:]}")
            time.sleep(0.1)


def _refused(port: int, name: str) -> bool:
    """Whether the handshake ends with the server's unrecognized_name alert (not a mere
    closed connection)."""
    try:
        _https_get(port, name, None)
    except ssl.SSLError as exc:
        return "UNRECOGNIZED_NAME" in str(exc)
    return False


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
def test_one_challenge_alone_obtains_a_certificate(challenge, ocsi_server, pebble, exts_path,  # noqa: F811
                                                   tmp_path):
    http, https = free_port(), free_port()
    ca = pebble(http, https)
    started = time.monotonic()
    srv = ocsi_server(_config(exts_path, ca, http, https,
                              _host("one.example.com www.one.example.com", "one"), challenge),
                      full=True)
    _wait_certificate(https, "one.example.com", ca)
    elapsed = time.monotonic() - started
    print(f"\n{challenge}: start to first certificate {elapsed:.2f} s")
    root = ca.root()
    assert _https_get(https, "one.example.com", root) == b"one"
    assert _https_get(https, "www.one.example.com", root) == b"one"
    log = srv.wait_log("warnings", "")  # nothing unexpected went wrong
    assert "Traceback" not in log
    # pebble validated with this very challenge, on the server's port: http-01 is a request
    # in the access log, tls-alpn-01 only a handshake
    asked = "/.well-known/acme-challenge/" in srv.wait_log("access", "acme-challenge", timeout=1)
    assert asked == (challenge == "http-01")
    key = srv.tmp / "data" / "acme" / "account.key"
    cert = srv.tmp / "data" / "acme" / "certs" / "one.example.com" / "certificate.pem"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cert).st_mode) == 0o600


def test_ca_down_at_start_http_serves_https_refused_until_it_comes_back(ocsi_server, pebble,  # noqa: F811
                                                                        exts_path):
    http, https = free_port(), free_port()
    ca = pebble(http, https, start=False)
    srv = ocsi_server(_config(exts_path, ca, http, https,
                              _host("down.example.com", "down", ' redirect-to-https="true"')),
                      full=True)
    # the first order fails (nothing listens at the directory): plain HTTP is served, the
    # HTTPS handshake is refused with an alert, and a warning says why
    assert "no certificate for down.example.com" in srv.wait_log("errors", "no certificate",
                                                                   timeout=20)
    assert _http_get(http, "down.example.com").endswith(b"down")  # redirect-to-https waits
    assert _refused(https, "down.example.com")
    warnings = srv.wait_log("warnings", "refused")
    assert "HTTPS handshake for down.example.com refused" in warnings
    ca.start()
    _wait_certificate(https, "down.example.com", ca)  # the next attempt (1 s, then 2 s…)
    assert _https_get(https, "down.example.com", ca.root()) == b"down"
    assert _http_get(http, "down.example.com").startswith(b"HTTP/1.1 301 ")


def test_restart_reuses_the_stored_certificate(ocsi_server, pebble, exts_path):  # noqa: F811
    http, https = free_port(), free_port()
    ca = pebble(http, https)
    xml = _config(exts_path, ca, http, https, _host("again.example.com", "again"))
    first = ocsi_server(xml, full=True)
    _wait_certificate(https, "again.example.com", ca)
    assert ca.orders() == 1
    first.stop()
    Path(first.config_path).rename(first.tmp / "first.conf")
    second = ocsi_server(xml.replace("{tmp}", str(first.tmp)), full=True)
    # served at once from <datadir>/acme, no new order
    assert _https_get(https, "again.example.com", ca.root()) == b"again"
    assert ca.orders() == 1


def test_a_name_failing_validation_is_logged_and_others_are_served(ocsi_server, pebble,  # noqa: F811
                                                                   exts_path, capsys):
    http, https = free_port(), free_port()
    ca = pebble(http, https)
    ca.resolve("bad.example.com", "127.0.0.2")  # nothing of ours listens there
    hosts = (_host("good.example.com", "good") + _host("bad.example.com", "bad")
             + _host("also.example.com", "also"))
    srv = ocsi_server(_config(exts_path, ca, http, https, hosts, "http-01"), full=True)
    _wait_certificate(https, "good.example.com", ca)
    _wait_certificate(https, "also.example.com", ca)
    errors = srv.wait_log("errors", "bad.example.com", timeout=WAIT)
    assert "no certificate for bad.example.com: validation failed" in errors
    assert "next attempt in" in errors
    assert _refused(https, "bad.example.com")
    assert _http_get(http, "bad.example.com").endswith(b"bad")
    root = ca.root()
    assert _https_get(https, "good.example.com", root) == b"good"
    assert _https_get(https, "also.example.com", root) == b"also"
    # ocsi cert status: each name set, its issuer and expiry, the failing one's error
    from ocsi.cli import main

    assert main(["cert", "status", "-c", srv.config_path]) == 1  # one host has none
    out = capsys.readouterr().out
    good = out.partition("good.example.com  (")[2].partition("\n\n")[0]
    bad = out.partition("bad.example.com  (")[2].partition("\n\n")[0]
    assert "issuer: CN=Pebble Intermediate CA" in good and "expires: " in good
    assert "next renewal: " in good and "last error: none" in good
    assert "certificate: none yet" in bad and "last error: validation failed" in bad


def test_several_hosts_despite_random_bad_nonces(ocsi_server, pebble, exts_path, caplog):  # noqa: F811
    """Pebble rejects 5 % of good nonces (PEBBLE_WFE_NONCEREJECT's default): six orders of
    about fifteen signed requests each usually meet a few; every certificate is obtained all
    the same, at the first attempt."""
    caplog.set_level(logging.DEBUG, "ocsi.acme")
    http, https = free_port(), free_port()
    ca = pebble(http, https)
    names = [f"n{i}.example.com" for i in range(6)]
    srv = ocsi_server(_config(exts_path, ca, http, https,
                              "".join(_host(n, n) for n in names)), full=True)
    for name in names:
        _wait_certificate(https, name, ca)
    root = ca.root()
    for name in names:
        assert _https_get(https, name, root) == name.encode()
    assert "Traceback" not in srv.log("errors")
    assert ca.orders() == len(names), srv.log("errors")  # no order failed and was retried
    rejected = sum("badNonce" in r.getMessage() for r in caplog.records)
    print(f"\n{rejected} badNonce rejections survived in {len(names)} orders")


def test_workers_one_orders_every_one_serves(ocsi_process, pebble, exts_path):  # noqa: F811
    https = free_port()
    ca = pebble(0, https, start=False)  # its HTTP port is the server's, known once it runs
    hosts = ('<host hostfilter="w.example.com" acme="true"><site path="pid"><pid/></site>'
             '<say text="w"/></host>')
    srv = ocsi_process(_config(exts_path, ca, 0, https, hosts, "http-01")
                       .replace("127.0.0.1:0<", "127.0.0.1:{port}<"), full=True,
                       args=["--workers", "2"])
    ca.http_port = srv.port
    ca.start()
    _wait_certificate(https, "w.example.com", ca)
    root = ca.root()
    pids: set[bytes] = set()
    for _ in range(200):  # new connections until both workers have answered over HTTPS
        try:
            pids.add(_https_get(https, "w.example.com", root, "/pid/"))
        except ssl.SSLError:  # worker 1 loads the stored certificate within 2 s
            pass
        if len(pids) == 2:
            break
        time.sleep(0.05)
    assert len(pids) == 2, pids
    assert ca.orders() == 1  # worker 0 ordered, worker 1 loaded what it stored


def _serial(port: int, name: str) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_renewal_under_load_fails_no_request(ocsi_server, pebble, exts_path):  # noqa: F811
    """Certificates valid 30 s: renewed when a third is left (about 20 s after issuance, with
    jitter), while clients keep asking on new and kept-alive connections."""
    http, https = free_port(), free_port()
    ca = pebble(http, https, validity=30)
    ocsi_server(_config(exts_path, ca, http, https, _host("renew.example.com", "renew")),
                full=True)
    _wait_certificate(https, "renew.example.com", ca)
    first = _serial(https, "renew.example.com")
    root = ca.root()
    ok, failed, renewed_after = 0, [], None
    started = time.monotonic()
    stop = threading.Event()

    def kept_alive() -> tuple[int, list[str]]:
        """One connection opened before the renewal, used throughout: it keeps its certificate."""
        done, errors = 0, []
        ctx = ssl.create_default_context(cadata=root.decode())
        with socket.create_connection(("127.0.0.1", https), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="renew.example.com") as s:
            f = s.makefile("rb")
            while not stop.is_set() and done < 5000:
                s.sendall(b"GET / HTTP/1.1\r\nHost: renew.example.com\r\n\r\n")
                status = f.readline()
                length = 0
                while (line := f.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if f.read(length) == b"renew" and b" 200 " in status:
                    done += 1
                else:
                    errors.append(status.decode(errors="replace"))
                time.sleep(0.02)
        return done, errors

    with ThreadPoolExecutor(1) as pool:
        keeper = pool.submit(kept_alive)
        for _ in range(20000):  # new connections until the new certificate is served (bounded)
            try:
                assert _https_get(https, "renew.example.com", root) == b"renew"
                ok += 1
            except (OSError, AssertionError) as exc:
                failed.append(repr(exc))
            if ok % 10 == 0 and _serial(https, "renew.example.com") != first:
                renewed_after = time.monotonic() - started
                break
            if time.monotonic() - started > 90:
                break
            time.sleep(0.005)
        stop.set()
        kept, kept_errors = keeper.result(30)
    print(f"\nrenewal under load: {ok} requests on new connections and {kept} on one kept-alive "
          f"connection, {len(failed) + len(kept_errors)} failed; new certificate served "
          f"{renewed_after:.1f} s after the load started")
    assert renewed_after is not None, "the certificate was not renewed"
    assert failed == [] and kept_errors == []
    assert ca.orders() == 2


def test_retry_after_of_a_rate_limiting_ca_is_honoured(ocsi_server, exts_path, tmp_path):
    """A CA answering 429 with Retry-After: one request, then nothing before the hour it asked
    for (not the 1 s of retry=)."""
    import http.server
    import json
    import threading as _threading

    from ocsi.certificates import issue, new_authority

    ca_pem, ca_key = new_authority("rate limiting CA")
    cert, key = issue(ca_pem, ca_key, ["localhost"])
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "rl.pem").write_bytes(key + cert)
    seen: list[str] = []

    class Limited(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            body = json.dumps({"type": "urn:ietf:params:acme:error:rateLimited",
                               "detail": "too many certificates"}).encode()
            self.send_response(429)
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Limited)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "rl.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    _threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        http_port, https = free_port(), free_port()
        xml = (f"<ocsigen><server><port>127.0.0.1:{http_port}</port>"
               f'<port protocol="HTTPS">127.0.0.1:{https}</port>'
               "<logdir>{tmp}/log</logdir><datadir>{tmp}/data</datadir>"
               f'<acme directory="https://localhost:{server.server_address[1]}/dir" '
               f'ca="{tmp_path / "ca.pem"}" retry="1"/>{BASE.format(exts=exts_path)}'
               f'{_host("limited.example.com", "limited")}</server></ocsigen>')
        srv = ocsi_server(xml, full=True)
        errors = srv.wait_log("errors", "next attempt", timeout=20)
        assert "too many certificates" in errors
        delay = float(errors.rpartition("next attempt in ")[2].split()[0])
        assert 3600 <= delay <= 3960  # Retry-After, plus at most 10 % jitter
        time.sleep(3)  # retry="1" would have asked twice more by now
        assert seen == ["/dir"]
    finally:
        server.shutdown()


@pytest.fixture
def postgresql():  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL cluster (ocsipersist-pgsql's test helper)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "plugins" / "ocsipersist-pgsql" / "tests"))
    import postgres

    if not postgres.available():
        pytest.skip("PostgreSQL is not installed")
    cluster = postgres.Cluster()
    yield cluster, postgres
    cluster.destroy()


def test_two_servers_share_one_certificate_through_postgresql(ocsi_server, pebble, exts_path,  # noqa: F811
                                                               postgresql, caplog):
    """Two servers of a cluster load ocsipersist-pgsql. The CA validates on server A's ports
    only; server B orders (A finds the name set locked while it starts), so A answers the
    challenge B published, then both serve the one certificate B stored."""
    import subprocess

    from ocsi._acme.shared import _lock_id

    caplog.set_level(logging.INFO, "ocsi.acme")
    cluster, postgres = postgresql
    database = (f'<extension findlib-package="ocsi-ext-ocsipersist-pgsql"><database host="127.0.0.1" '
                f'port="{cluster.port}" user="{postgres.USER}" password="{postgres.PASSWORD}" '
                f'database="ocsipersist"/></extension>')
    a_http, a_https, b_http, b_https = free_port(), free_port(), free_port(), free_port()
    ca = pebble(a_http, a_https)  # the CA validates on server A only
    host = _host("cluster.example.com", "cluster")
    holder = subprocess.Popen(  # another server ordering, as far as A can tell
        ["psql", "-h", cluster.socket_dir, "-p", str(cluster.port), "-U", postgres.USER,
         "-d", "ocsipersist", "-tA"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(f"SELECT pg_advisory_lock({_lock_id(['cluster.example.com'])}), 'locked';\n")
    holder.stdin.flush()
    assert "locked" in holder.stdout.readline()
    try:
        a = ocsi_server(_config(exts_path, ca, a_http, a_https, database + host, "http-01"),
                        full=True)
        for _ in range(300):  # bounded: until A has found the name set locked
            if any("another server orders" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("server A never tried to order")
    finally:
        holder.communicate("\\q\n", timeout=10)  # the session ends: the lock is released
    b = ocsi_server(_config(exts_path, ca, b_http, b_https, database + host, "http-01"),
                    full=True)
    for https in (a_https, b_https):
        _wait_certificate(https, "cluster.example.com", ca)
    assert _serial(a_https, "cluster.example.com") == _serial(b_https, "cluster.example.com")
    assert ca.orders() == 1
    obtained = [r for r in caplog.records if "obtained in" in r.getMessage()]
    assert len(obtained) == 1 and b.config_path in obtained[0].getMessage()  # B ordered
    # B ordered, and the CA's validation request reached A, answered from the shared storage
    assert "/.well-known/acme-challenge/" in a.wait_log("access", "acme-challenge", timeout=5)
    assert "acme-challenge" not in b.log("access")


def test_a_certificate_that_cannot_be_renewed_is_a_warning_before_expiry(ocsi_server, pebble,  # noqa: F811
                                                                           exts_path):
    """30-second certificates, the CA gone after the first: the renewal fails (logged, retried
    with backoff), and before expiry (a sixth of this short lifetime; fourteen days for a
    90-day certificate) a warning says the certificate is not renewed yet, with the reason."""
    http, https = free_port(), free_port()
    ca = pebble(http, https, validity=30)
    srv = ocsi_server(_config(exts_path, ca, http, https, _host("late.example.com", "late")),
                      full=True)
    _wait_certificate(https, "late.example.com", ca)
    ca.stop()
    warnings = srv.wait_log("warnings", "is not renewed yet", timeout=WAIT)
    line = next(text for text in warnings.splitlines() if "is not renewed yet" in text)
    assert "the certificate of late.example.com expires on " in line
    assert "(last error: cannot reach the CA at " in line
    assert "no certificate for late.example.com: cannot reach the CA" in srv.log("errors")
    assert "Traceback" not in srv.log("errors")
