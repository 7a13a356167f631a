"""A certificate per host, chosen by the name the client sends (SNI); the ``<ssl>`` pair for
the others; checks at load; new certificates on reload and ``ssl:reload``."""

from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ocsi import ConfigError
from ocsi.tls import covers, self_signed

from .conftest import BASE


def _pair(tmp: Path, name: str, *names: str, days: int = 90) -> tuple[Path, Path, bytes]:
    cert, key = self_signed(names, days=days)
    (tmp / f"{name}.crt").write_bytes(cert)
    (tmp / f"{name}.key").write_bytes(key)
    return tmp / f"{name}.crt", tmp / f"{name}.key", cert


def _doc(exts: str, default: tuple[Path, Path, bytes], hosts: str) -> str:
    return (f'<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>\n'
            f"<ssl><certificate>{default[0]}</certificate><privatekey>{default[1]}</privatekey></ssl>\n"
            f"<logdir>{{tmp}}/log</logdir><commandpipe>{{tmp}}/ocsi.cmd</commandpipe>"
            f"{BASE.format(exts=exts)}{hosts}</server></ocsigen>")


def _host(hostfilter: str, pair: tuple[Path, Path, bytes] | None, text: str) -> str:
    certs = f' certificate="{pair[0]}" privatekey="{pair[1]}"' if pair else ""
    return f'<host hostfilter="{hostfilter}"{certs}><say text="{text}"/></host>'


def _served(port: int, name: str | None) -> tuple[bytes, bytes]:
    """(the certificate the server presented as PEM, the answer) for a client sending ``name``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as s:
        der = s.getpeercert(binary_form=True)
        s.sendall(f"GET / HTTP/1.1\r\nHost: {name or 'other'}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert der is not None
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    return pem, data.partition(b"\r\n\r\n")[2]


def test_each_host_gets_its_certificate_and_the_rest_the_default(ocsi_server, exts_path, tmp_path):
    default = _pair(tmp_path, "default", "localhost")
    a = _pair(tmp_path, "a", "a.test", "www.a.test")
    b = _pair(tmp_path, "b", "*.b.test")
    srv = ocsi_server(_doc(exts_path, default,
                           _host("a.test www.a.test", a, "A") + _host("*.b.test", b, "B")
                           + _host("*", None, "other")), full=True)
    assert _served(srv.port, "a.test") == (a[2], b"A")
    assert _served(srv.port, "WWW.A.TEST") == (a[2], b"A")
    assert _served(srv.port, "x.b.test") == (b[2], b"B")
    assert _served(srv.port, "unknown.test") == (default[2], b"other")
    assert _served(srv.port, None) == (default[2], b"other")


def test_certificates_are_renewed_on_reload_and_ssl_reload(ocsi_server, exts_path, tmp_path):
    default = _pair(tmp_path, "default", "localhost")
    a = _pair(tmp_path, "a", "a.test")
    doc = _doc(exts_path, default, _host("a.test", a, "A"))
    srv = ocsi_server(doc, full=True)
    assert _served(srv.port, "a.test")[0] == a[2]
    a2 = _pair(tmp_path, "a", "a.test")  # the same files, new contents
    d2 = _pair(tmp_path, "default", "localhost")
    srv.command("ssl:reload")
    assert "Certificates reloaded" in srv.wait_log("warnings", "Certificates reloaded")
    assert _served(srv.port, "a.test")[0] == a2[2]
    assert _served(srv.port, None)[0] == d2[2]
    (tmp_path / "a.key").write_text("broken")
    srv.command("ssl:reload")
    assert "previous ones stay" in srv.wait_log("errors", "previous ones stay")
    assert _served(srv.port, "a.test")[0] == a2[2]  # kept
    a3 = _pair(tmp_path, "a3", "a.test")
    srv.reload(_doc(exts_path, d2, _host("a.test", a3, "A3")))
    assert _served(srv.port, "a.test") == (a3[2], b"A3")


@pytest.mark.parametrize("case", ["names", "expired", "mismatch", "half", "password"])
def test_bad_host_certificates_are_located_errors(ocsi_server, exts_path, tmp_path, case):
    default = _pair(tmp_path, "default", "localhost")
    if case == "names":
        pair = _pair(tmp_path, "h", "other.test")
        host, match = _host("a.test", pair, "A"), "does not cover a.test"
    elif case == "expired":
        pair = _pair(tmp_path, "h", "a.test", days=0)  # expired at once
        host, match = _host("a.test", pair, "A"), "expired on"
    elif case == "mismatch":
        pair = _pair(tmp_path, "h", "a.test")
        host, match = (f'<host hostfilter="a.test" certificate="{pair[0]}" '
                       f'privatekey="{default[1]}"/>'), "do not match"
    elif case == "half":
        pair = _pair(tmp_path, "h", "a.test")
        host, match = f'<host hostfilter="a.test" certificate="{pair[0]}"/>', "go together"
    else:
        pair = _pair(tmp_path, "h", "a.test")
        key = serialization.load_pem_private_key(pair[1].read_bytes(), None)
        pair[1].write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw")))
        host, match = _host("a.test", pair, "A"), "protected by a password"
    with pytest.raises(ConfigError, match=match) as err:
        ocsi_server(_doc(exts_path, default, host), full=True)
    assert "ocsi.conf:3:" in str(err.value)  # the <host> element


def test_a_certificate_about_to_expire_is_announced(ocsi_server, exts_path, tmp_path):
    default = _pair(tmp_path, "default", "localhost")
    soon = _pair(tmp_path, "soon", "a.test", days=10)
    doc = _doc(exts_path, default, _host("a.test", soon, "A"))
    srv = ocsi_server(doc, full=True)
    expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10))
    # at start (read before the log files were open), then at each reload: in warnings.log
    assert f"{expiry:%Y-%m}" in srv.wait_log("warnings", "expires on")
    assert srv.log("warnings").count("expires on") == 1
    srv.reload(doc)
    assert srv.log("warnings").count("expires on") == 2


def test_which_names_a_certificate_covers() -> None:
    assert covers(["a.test"], "A.test.")
    assert covers(["*.b.test"], "x.b.test") and not covers(["*.b.test"], "x.y.b.test")
    assert not covers(["*.b.test"], "b.test")
    assert covers(["*.b.test"], "*.b.test") and not covers(["x.b.test"], "*.b.test")


def test_worker_processes_choose_by_name_too(ocsi_process, exts_path, tmp_path):
    default = _pair(tmp_path, "default", "localhost")
    a = _pair(tmp_path, "a", "a.test")
    proc = ocsi_process(_doc(exts_path, default, _host("a.test", a, "A") + _host("*", None, "x")),
                        full=True, args=["--workers", "2"])
    for _ in range(4):
        assert _served(proc.port, "a.test") == (a[2], b"A")
        assert _served(proc.port, "b.test") == (default[2], b"x")


def test_ocsi_cert_dev_makes_a_ca_once_and_a_trusted_certificate(ocsi_server, exts_path, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}

    def cert_dev(*names: str) -> str:
        return subprocess.run([sys.executable, "-m", "ocsi", "cert", "dev", *names, "--out",
                               str(tmp_path / "dev")], env=env, capture_output=True, text=True,
                              timeout=60, check=True).stdout

    first = cert_dev("app.test")
    assert first.startswith("Made the development CA") and "update-ca-certificates" in first
    ca = tmp_path / "xdg" / "ocsi" / "dev-ca" / "ocsi-dev-ca.crt"
    assert (ca.parent / "ocsi-dev-ca.key").stat().st_mode & 0o077 == 0
    assert cert_dev("app.test").startswith("Using the development CA")  # made once
    crt, key = tmp_path / "dev" / "ocsi-dev.crt", tmp_path / "dev" / "ocsi-dev.key"
    srv = ocsi_server(_doc(exts_path, (crt, key, b""), _host("*", None, "dev")), full=True)
    for name in ("localhost", "app.test"):  # verified against the CA, names checked
        ctx = ssl.create_default_context(cafile=str(ca))
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")


def test_redirect_to_https_and_hsts(ocsi_server, exts_path, tmp_path):
    import http.client

    from ocsi.testing import free_port

    default = _pair(tmp_path, "default", "localhost")
    https_port = free_port()
    doc = _doc(exts_path, default, '<host redirect-to-https="true" hsts="600"><say text="s"/></host>')
    doc = doc.replace("<ssl>", f'<port>127.0.0.1:{{port}}</port><ssl>').replace(
        'protocol="HTTPS">127.0.0.1:{port}', f'protocol="HTTPS">127.0.0.1:{https_port}')
    srv = ocsi_server(doc, full=True)
    plain = srv.port if srv.port != https_port else srv.server.ports[1]
    conn = http.client.HTTPConnection("127.0.0.1", plain, timeout=10)
    conn.request("GET", "/a/b?c=d", headers={"Host": "www.example.org:8080"})
    r = conn.getresponse()
    r.read()
    assert r.status == 301 and r.headers["location"] == f"https://www.example.org:{https_port}/a/b?c=d"
    assert r.headers["strict-transport-security"] is None  # never over plain HTTP
    conn.request("POST", "/form", body=b"x", headers={"Host": "www.example.org"})
    r = conn.getresponse()
    r.read()
    assert r.status == 308
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    secure = http.client.HTTPSConnection("127.0.0.1", https_port, context=ctx, timeout=10)
    secure.request("GET", "/")
    r = secure.getresponse()
    assert (r.status, r.read()) == (200, b"s")
    assert r.headers["strict-transport-security"] == "max-age=600"


def test_redirect_to_https_needs_an_https_port(ocsi_server, exts_path):
    with pytest.raises(ConfigError, match="needs an HTTPS <port>"):
        ocsi_server(BASE.format(exts=exts_path) + '<host redirect-to-https="true"/>')
    with pytest.raises(ConfigError, match="hsts"):
        ocsi_server(BASE.format(exts=exts_path) + '<host hsts="forever"/>')
