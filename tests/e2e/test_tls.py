"""HTTPS as configured by ``<ssl>``: what is refused at start (located), the options that shape
the handshake (``<ciphers>``, ``<curve>``, ``<dhfile>``), the TLS 1.2 floor, plain HTTP sent to
an HTTPS port, and a drain over TLS."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from ocsi import ConfigError
from ocsi.tls import self_signed

from .conftest import BASE


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, bytes]:
    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    return tmp_path / "c.pem", tmp_path / "k.pem", cert


def _doc(exts: str, cert: Path | str, key: Path | str, extra: str = "", host: str = "<echo/>") -> str:
    return (f"<ocsigen><server><port protocol=\"HTTPS\">127.0.0.1:{{port}}</port>\n"
            f"<ssl><certificate>{cert}</certificate><privatekey>{key}</privatekey>{extra}</ssl>\n"
            f"{BASE.format(exts=exts)}<host>{host}</host></server></ocsigen>")


def _client(cert: bytes, **versions: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=cert.decode())
    for name, value in versions.items():
        setattr(ctx, name, value)
    return ctx


def _get(port: int, ctx: ssl.SSLContext, path: str = "/x") -> tuple[int, bytes, tuple]:
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        cipher = conn.sock.cipher()  # before the answer: "Connection: close" detaches the socket
        r = conn.getresponse()
        return r.status, r.read(), cipher
    finally:
        conn.close()


# -- refused at start, where it is written ---------------------------------------------------------
def _start_error(ocsi_server, doc: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        ocsi_server(doc, full=True)
    assert e.value.where.endswith("ocsi.conf:2:1"), e.value.where  # the <ssl> element
    return e.value


def test_a_key_that_does_not_match_the_certificate(ocsi_server, exts_path, pair, tmp_path):
    cert, _, _ = pair
    _, other = self_signed()
    (tmp_path / "other.pem").write_bytes(other)
    err = _start_error(ocsi_server, _doc(exts_path, cert, tmp_path / "other.pem"))
    assert "do not match" in str(err) and "other.pem" in str(err)


def test_files_that_are_not_pem(ocsi_server, exts_path, pair, tmp_path):
    cert, key, _ = pair
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    err = _start_error(ocsi_server, _doc(exts_path, tmp_path / "junk.pem", key))
    assert f"{tmp_path}/junk.pem is not a PEM certificate" in str(err)
    err = _start_error(ocsi_server, _doc(exts_path, cert, tmp_path / "junk.pem"))
    assert f"{tmp_path}/junk.pem is not a PEM private key" in str(err)


def test_files_that_cannot_be_read(ocsi_server, exts_path, pair, tmp_path):
    cert, key, _ = pair
    err = _start_error(ocsi_server, _doc(exts_path, tmp_path / "missing.pem", key))
    assert f"cannot read the SSL certificate {tmp_path}/missing.pem: No such file" in str(err)
    err = _start_error(ocsi_server, _doc(exts_path, cert, tmp_path))  # a directory
    assert f"cannot read the SSL key {tmp_path}: Is a directory" in str(err)


@pytest.mark.parametrize("extra, message", [
    ("<ciphers>NO-SUCH-CIPHER</ciphers>", "invalid SSL option"),
    ("<curve>no-such-curve</curve>", "invalid SSL option"),
])
def test_bad_options(ocsi_server, exts_path, pair, extra, message):
    cert, key, _ = pair
    assert message in str(_start_error(ocsi_server, _doc(exts_path, cert, key, extra)))


def test_a_dhfile_that_is_not_dh_parameters(ocsi_server, exts_path, pair):
    cert, key, _ = pair
    err = _start_error(ocsi_server, _doc(exts_path, cert, key, f"<dhfile>{cert}</dhfile>"))
    assert "invalid SSL option" in str(err)


#: The 2048-bit group of RFC 7919 (ffdhe2048): generating parameters that big takes minutes.
FFDHE2048 = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF9"
    "7D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FB"
    "B96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA"
    "886B423861285C97FFFFFFFFFFFFFFFF", 16)


# -- options that shape the handshake --------------------------------------------------------------
def test_ciphers_choose_the_tls12_suite(ocsi_server, exts_path, pair):
    cert, key, pem = pair
    srv = ocsi_server(_doc(exts_path, cert, key, "<ciphers>ECDHE-ECDSA-CHACHA20-POLY1305</ciphers>"),
                      full=True)
    status, body, cipher = _get(srv.port, _client(pem, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert status == 200 and b"GET /x" in body
    assert cipher[0] == "ECDHE-ECDSA-CHACHA20-POLY1305" and cipher[1] == "TLSv1.2"


def test_curve_limits_the_key_exchange(ocsi_server, exts_path, pair):
    cert, key, pem = pair
    srv = ocsi_server(_doc(exts_path, cert, key, "<curve>secp384r1</curve>"), full=True)
    client = _client(pem, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert _get(srv.port, client)[0] == 200
    if hasattr(client, "set_ecdh_curve"):
        # a TLS 1.2 client offering only another curve cannot agree with the server
        client = _client(pem, maximum_version=ssl.TLSVersion.TLSv1_2)
        client.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        client.set_ecdh_curve("prime256v1")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _get(srv.port, client)


@pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")
def test_dhfile_parameters_are_loaded(ocsi_server, exts_path, pair, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dh

    params = dh.DHParameterNumbers(FFDHE2048, 2).parameters()
    (tmp_path / "dh.pem").write_bytes(params.parameter_bytes(
        serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3))
    cert, key, pem = pair
    srv = ocsi_server(_doc(exts_path, cert, key, f"<dhfile>{tmp_path}/dh.pem</dhfile>"), full=True)
    assert _get(srv.port, _client(pem))[0] == 200


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1")
def test_tls_below_1_2_is_refused(ocsi_server, exts_path, pair):
    cert, key, pem = pair
    srv = ocsi_server(_doc(exts_path, cert, key), full=True)
    old = _client(pem, minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    try:
        old.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer what old servers took
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _get(srv.port, old)
    status, _, cipher = _get(srv.port, _client(pem, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert status == 200 and cipher[1] == "TLSv1.2"
    assert _get(srv.port, _client(pem))[2][1] == "TLSv1.3"


def test_plain_http_on_the_https_port_is_closed_cleanly(ocsi_server, exts_path, pair, caplog):
    import logging

    cert, key, pem = pair
    srv = ocsi_server(_doc(exts_path, cert, key), full=True)
    caplog.set_level(logging.ERROR)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
    assert not data.startswith(b"HTTP/")  # no plain answer on a TLS port: a TLS alert or nothing
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "Traceback" in r.getMessage()]
    assert _get(srv.port, _client(pem))[0] == 200  # and the port still serves TLS


def test_draining_over_tls(ocsi_server, exts_path, pair):
    """A shutdown lets an in-flight HTTPS response finish, then the server stops."""
    cert, key, pem = pair
    srv = ocsi_server(_doc(exts_path, cert, key, host='<slow seconds="1"/><echo/>'), full=True)
    results: list[tuple[int, bytes]] = []

    def fetch() -> None:
        status, body, _ = _get(srv.port, _client(pem), "/slow")
        results.append((status, body))

    t = threading.Thread(target=fetch)
    t.start()
    deadline = time.monotonic() + 10
    while srv.server.manager.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.server.manager.in_flight == 1
    srv.stop(timeout=10)
    t.join(10)
    assert results == [(200, b"slow")]
    assert not srv.thread.is_alive()
