"""Automatic HTTPS against a real ACME CA (pebble): http-01 and tls-alpn-01 validated by
connections to the server under test, refused handshakes until the first certificate, plain
HTTP served meanwhile, a restart reusing the stored certificate, a name that fails, pebble's
random badNonce rejections."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import time
from pathlib import Path

import pytest

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


def _host(names: str, text: str) -> str:
    return f'<host hostfilter="{names}" acme="true"><say text="{text}"/></host>'


def _https_get(port: int, name: str, root: bytes | None) -> bytes:
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
        s.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
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
    try:
        _https_get(port, name, None)
    except ssl.SSLError:
        return True
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
