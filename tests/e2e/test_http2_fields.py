"""HTTP/2 requests meet the rules of an HTTP/1.1 head before any step sees them (method a token,
target visible ASCII, names lower-case tokens, values without control characters); and a
rapid-reset client is closed with one log line, nothing of what it sent after handled.

A raw HTTP/2 client (h2 with its own checks off) sends what HPACK can carry; the server runs
``<echo/>``, which would answer 200 with the request line had the request reached it."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ocsi.testing import H2Client, self_signed

from .conftest import BASE


@pytest.fixture
def h2c(ocsi_server, exts_path):  # type: ignore[no-untyped-def]
    return ocsi_server(
        '<ocsigen><server><port h2c="true">127.0.0.1:{port}</port>'
        f"<logdir>{{tmp}}/log</logdir>{BASE.format(exts=exts_path)}"
        "<host><echo/></host></server></ocsigen>", full=True)


@pytest.fixture
def h2tls(ocsi_server, exts_path, tmp_path: Path):  # type: ignore[no-untyped-def]
    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    return ocsi_server(
        '<ocsigen><server><port protocol="HTTPS">127.0.0.1:{port}</port>'
        f"<ssl><certificate>{tmp_path}/c.pem</certificate><privatekey>{tmp_path}/k.pem</privatekey></ssl>"
        f"<logdir>{{tmp}}/log</logdir>{BASE.format(exts=exts_path)}"
        "<host><echo/></host></server></ocsigen>", full=True)


def _status(c: H2Client, sid: int) -> tuple[bytes, bytes]:
    head, body = c.responses(1)[sid]
    return head[b":status"], body


BAD = {
    # the shape: a request line in :method, for a proxy to write as one
    "method with a request line": dict(method=b"GET /admin/secret HTTP/1.1\x0b"),
    "method with a space": dict(method=b"GET /admin"),
    "method with a control": dict(method=b"GE\x01T"),
    "method with a separator": dict(method=b"GET(x)"),
    "path with VT": dict(path=b"/app/x\x0b/admin"),
    "path with FF": dict(path=b"/app/\x0cx"),
    "path with DEL": dict(path=b"/app/x\x7f"),
    "path with a space": dict(path=b"/app/x HTTP/1.1"),
    "path with a control": dict(path=b"/a\x01"),
    "path with non-ASCII": dict(path="/caf\u00e9".encode()),
    "star for GET": dict(path=b"*"),
    "absolute URL as :path": dict(path=b"http://evil.example/x"),
    "relative :path": dict(path=b"x"),
    "value with SOH": dict(headers=[(b"x-a", b"a\x01b")]),
    "value with DEL": dict(headers=[(b"x-a", b"a\x7fb")]),
    "value with VT": dict(headers=[(b"x-a", b"a\x0bb")]),
    "value with ESC": dict(headers=[(b"user-agent", b"\x1b[2J")]),
    "name not a token": dict(headers=[(b'x(a)"/', b"v")]),
    "name with braces": dict(headers=[(b"x{y}", b"v")]),
    "authority with a path": dict(authority=b"evil.example/x"),
    "authority with a control": dict(authority=b"h\x01"),
    "authority with userinfo": dict(authority=b"u@h"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_malformed_request_is_400_and_the_connection_goes_on(h2c, name):
    c = H2Client(h2c.port, tls=False, strict=False)
    parts = {"path": b"/app/x", "method": b"GET", **BAD[name]}
    status, body = _status(c, c.request(**parts))
    assert (status, body) == (b"400", b"Error: Bad Request"), name
    sid = c.request("/after")  # a stream error: the connection still serves
    status, body = _status(c, sid)
    assert status == b"200" and body.startswith(b"GET /after ")


def test_fields_the_rules_allow_still_pass(h2c):
    c = H2Client(h2c.port, tls=False, strict=False)
    sid = c.request(b"/ok/%c3%a9?q=a%20b", b"PATCH",
                    headers=[(b"x-tab", b"a\tb"), (b"x-latin", b"caf\xe9"), (b"x-empty", b""),
                             (b"x-!#$%&'*+.^_`|~", b"v")])
    status, body = _status(c, sid)
    assert status == b"200" and body.startswith(b"PATCH /ok/%c3%a9?q=a%20b ")


def test_rapid_reset_logs_one_line_and_handles_nothing_after_the_close(h2tls):
    from ocsi._http.h2conn import MAX_EARLY_RESETS

    c = H2Client(h2tls.port)
    for _ in range(MAX_EARLY_RESETS + 50):  # open and cancel, well past the limit
        sid = c.h2.get_next_available_stream_id()
        c.h2.send_headers(sid, [(":method", "GET"), (":path", "/x"), (":scheme", "https"),
                                (":authority", "localhost")], end_stream=True)
        c.h2.reset_stream(sid)
    c.request("/late")  # after the resets: the connection is closed by then
    try:
        c.sock.sendall(c.h2.data_to_send())  # in one write, read by the server at once
    except (ssl.SSLError, ConnectionError):
        pass
    c.read_until_closed()
    fresh = H2Client(h2tls.port)
    sid = fresh.request("/fine")
    assert _status(fresh, sid)[0] == b"200"
    h2tls.wait_log("access", "/fine")
    assert h2tls.log("warnings").count("reset more than") == 1
    assert "/late" not in h2tls.log("access")


def test_connect_is_refused_as_over_http11(h2c):
    c = H2Client(h2c.port, tls=False, strict=False)
    sid = c.h2.get_next_available_stream_id()
    c.h2.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.org:443")],
                      end_stream=True)
    c.flush()
    assert _status(c, sid) == (b"400", b"Error: Bad Request")
