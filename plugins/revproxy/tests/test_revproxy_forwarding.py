"""What the backend receives and what the client gets back, over real sockets on both sides."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from conftest import EXT

AC = '<extension findlib-package="ocsi-ext-accesscontrol"/>'


def proxy(ocsi_server: Callable[..., Any], body: str, ext: str = EXT, **kw: Any) -> Any:
    return ocsi_server(ext + f"<host>{body}</host>", **kw)


def echo(r: Any) -> dict[str, Any]:
    assert r.status == 200, (r.status, r.body[:200])
    return json.loads(r.body)


def header(info: dict, name: str) -> list[str]:
    return [v for n, v in info["headers"] if n == name]


def raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out


# -- targets ---------------------------------------------------------------------------------------
def test_suburl_in_a_site_keeps_path_and_query_exactly(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<site path="app"><revproxy suburl="(.*)" dest="{b.url}/\\1"/></site>')
    info = echo(srv.get("/app/echo/a%20b%2Fc?x=%41&y=1+2"))
    assert info["target"] == "/echo/a%20b%2Fc?x=%41&y=1+2"  # not decoded, not encoded again
    assert echo(srv.get("/app/echo"))["target"] == "/echo"
    assert srv.get("/elsewhere").status == 404


def test_dest_with_its_own_path_and_query(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="api/([^?]*)(.*)" dest="{b.url}/echo/v2/\\1\\2"/>')
    assert echo(srv.get("/api/users?id=3"))["target"] == "/echo/v2/users?id=3"


def test_fullurl_matches_scheme_host_and_port(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy fullurl="http://front.example:(\\d+)/(.*)" dest="{b.url}/\\2"/>')
    assert echo(srv.get("/echo/f", host=f"front.example:{srv.port}"))["target"] == "/echo/f"
    assert srv.get("/echo/f", host="other.example").status == 404


def test_regexp_is_fullurl_as_in_5_0_1(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy regexp="http://[^/]*/(echo.*)" dest="{b.url}/\\1"/>')
    assert echo(srv.get("/echo/r?q"))["target"] == "/echo/r?q"


def test_the_pre_1_2_form(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy regexp="old/(.*)" server="127.0.0.1" port="{b.port}" '
                             'uri="/echo/$1" protocol="http"/>')
    assert echo(srv.get("/old/thing"))["target"] == "/echo/thing"


# -- headers ---------------------------------------------------------------------------------------
def test_host_is_the_destinations_unless_keephost(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<site path="d"><revproxy suburl="(.*)" dest="{b.url}/\\1"/></site>'
                             f'<site path="k"><revproxy suburl="(.*)" dest="{b.url}/\\1" keephost="keephost"/></site>')
    assert header(echo(srv.get("/d/echo", host="public.example")), "host") == [f"127.0.0.1:{b.port}"]
    info = echo(srv.get("/k/echo", host="public.example"))
    assert header(info, "host") == ["public.example"]  # sent, but ocsi connected to dest


def test_forwarding_headers(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1" forwarded="forwarded"/>')
    info = echo(srv.get("/echo", {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
                                  "Forwarded": "for=6.6.6.6"}, host="pub.example:8443"))
    assert header(info, "x-forwarded-for") == ["127.0.0.1"]  # an unverified chain is not passed on
    assert header(info, "x-forwarded-proto") == ["http"]
    assert header(info, "x-forwarded-host") == ["pub.example:8443"]
    assert header(info, "forwarded") == ['for=127.0.0.1;proto=http;host="pub.example:8443"']


def test_a_chain_accesscontrol_trusts_is_passed_on(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, '<allow-forward-for proxies="127.0.0.1"/><allow-forward-proto/>'
                             f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>', ext=AC + EXT)
    info = echo(srv.get("/echo", {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}))
    assert header(info, "x-forwarded-for") == ["203.0.113.7, 127.0.0.1"]
    assert header(info, "x-forwarded-proto") == ["https"]


def test_hop_by_hop_headers_stop_at_the_proxy(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    out = raw(srv.port, b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\n"
                        b"X-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
                        b"Proxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    info = json.loads(body)
    names = {n for n, _ in info["headers"]}
    assert not names & {"connection", "x-secret", "keep-alive", "upgrade", "proxy-connection"}
    assert header(info, "x-kept") == ["yes"]
    # TE is not copied; the proxy says its own `trailers` since it relays them to this client
    assert header(info, "te") == ["trailers"]


# -- bodies ----------------------------------------------------------------------------------------
def test_request_bodies_sized_and_chunked(ocsi_server, backend):
    import hashlib

    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    data = bytes(range(256)) * 20000  # 5 MB
    info = echo(srv.request("POST", "/echo", body=data))
    assert info["length"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()
    assert header(info, "content-length") == [str(len(data))]
    out = raw(srv.port, b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                        b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    info = json.loads(out.partition(b"\r\n\r\n")[2])
    assert info["length"] == 11 and info["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert header(info, "transfer-encoding") == ["chunked"] and not header(info, "content-length")


def test_expect_100_continue(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"PUT /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(b"data")
        out = b""
        while b"}" not in out:
            out += s.recv(65536)
    info = json.loads(out.partition(b"\r\n\r\n")[2])
    assert info["length"] == 4 and not header(info, "expect")


def test_big_responses_stream_in_both_framings(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    r = srv.get("/bytes/3000000")
    assert len(r.body) == 3000000 and r.headers["content-length"] == "3000000" and not r.chunked
    r = srv.get("/bytes/3000000?chunked")
    assert len(r.body) == 3000000 and r.chunked and r.body[:256] == bytes(range(256))


def test_head_204_304_have_no_body(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    r = srv.head("/bytes/1234")
    assert (r.status, r.body, r.headers["content-length"]) == (200, b"", "1234")
    r = srv.get("/status/204")
    assert (r.status, r.body) == (204, b"")
    r = srv.get("/status/304")
    assert (r.status, r.body, r.headers["etag"]) == (304, b"", '"x"')
    assert srv.get("/status/418").status == 418
    assert b.connections == 1  # all on one pooled connection


def test_a_close_delimited_answer_is_framed_for_the_client(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    r = srv.get("/eof")
    assert (r.status, r.body, r.chunked) == (200, b"e" * 5000, True)
    out = raw(srv.port, b"GET /eof HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\n" + b"e" * 5000)


# -- connections -----------------------------------------------------------------------------------
def test_connections_are_pooled_unless_nopipeline(ocsi_server, backend):
    b, c = backend("b"), backend("c")
    srv = proxy(ocsi_server, f'<site path="p"><revproxy suburl="(.*)" dest="{b.url}/\\1"/></site>'
                             f'<site path="n"><revproxy suburl="(.*)" dest="{c.url}/\\1" nopipeline="nopipeline"/></site>')
    for _ in range(10):
        assert srv.get("/p/echo").status == 200
        assert srv.get("/n/echo").status == 200
    assert (b.connections, b.requests) == (1, 10)
    assert (c.connections, c.requests) == (10, 10)


def test_a_dead_pooled_connection_is_retried_once_for_idempotent_requests(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    assert echo(srv.get("/once"))["method"] == "GET"
    assert echo(srv.get("/once"))["method"] == "GET"  # its pooled connection was dropped: retried
    assert b.connections == 2
    # a POST is never sent twice: on the pooled connection the backend drops, a 502
    assert srv.request("POST", "/once", body=b"x").status == 502
    assert "the backend closed the connection without answering" in srv.wait_log("errors", "without")
    assert echo(srv.request("POST", "/once", body=b"x"))["length"] == 1  # a new connection
    assert b.connections == 3


# -- failures --------------------------------------------------------------------------------------
def test_a_dead_backend_is_a_clean_502_and_one_error_line(ocsi_server):
    from ocsi.testing import free_port

    port = free_port()  # nothing listens there
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="http://127.0.0.1:{port}/\\1"/>')
    r = srv.get("/x")
    assert (r.status, r.body) == (502, b"Error: Bad Gateway")
    errors = srv.wait_log("errors", "cannot connect")
    assert f"cannot connect to http://127.0.0.1:{port}" in errors and "Traceback" not in errors


def test_a_slow_backend_is_a_504(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1" responsetimeout="0.3"/>')
    assert srv.get("/slowhead/3").status == 504
    assert "did not answer GET /slowhead/3 within 0.3 s" in srv.wait_log("errors", "did not answer")
    assert srv.get("/echo").status == 200


@pytest.mark.parametrize("path, attrs", [("/diemid", ""), ("/stall", ' idletimeout="0.3"')])
def test_a_backend_failing_mid_body_aborts_the_client_connection(ocsi_server, backend, path, attrs):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"{attrs}/>')
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", path)
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-length") == "1000000"
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    conn.close()
    errors = srv.wait_log("errors", "aborted")
    assert "response aborted:" in errors and "Traceback" not in errors
    assert srv.get("/echo").status == 200  # the server carries on


def test_a_small_answer_cut_short_is_a_502(ocsi_server, backend):
    """Small answers are read whole before they are sent: one cut short can still be a 502."""
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    r = srv.get("/diesmall")
    assert (r.status, r.body) == (502, b"Error: Bad Gateway")
    assert "in the middle of the body" in srv.wait_log("errors", "middle")


def test_a_destination_that_is_not_a_url_after_expansion_is_a_500(ocsi_server, backend):
    srv = proxy(ocsi_server, '<revproxy suburl="(.*)" dest="\\1"/>')
    assert srv.get("/not-a-url").status == 500
    assert "is not an http:// or https:// URL" in srv.wait_log("errors", "URL")


def test_the_answer_is_framed_once_with_the_backends_headers_in_any_case(ocsi_server):
    """A backend writing ``Content-Length``/``Connection`` in its own case (nginx does): the
    client gets one framing and ocsi's connection handling, never both."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def backend_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n"
                         b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Case: Kept\r\n\r\nhello")
            conn.recv(65536)  # until the proxy lets go

    t = threading.Thread(target=backend_once, daemon=True)
    t.start()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="http://127.0.0.1:{port}/\\1"/>')
    out = raw(srv.port, b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")[1:]]
    assert body == b"hello"
    assert lines.count(b"content-length: 5") == 1 and not any(b"transfer-encoding" in x for x in lines)
    assert [x for x in lines if x.startswith(b"server:")] == [b"server: nginx"]
    assert b"keep-alive: timeout=5" not in lines and b"connection: keep-alive" not in lines
    assert b"x-case: kept" in lines
    listener.close()


def test_a_backend_that_never_finishes_connecting_is_a_504(ocsi_server):
    """A listener that accepts but never speaks TLS: the handshake is part of connecting, so
    ``connecttimeout`` ends it (and a second destination would be tried)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="https://127.0.0.1:{port}/\\1" '
                                 'connecttimeout="0.3" insecure="insecure"/>')
        r = srv.get("/x")
        assert (r.status, r.body) == (504, b"Error: Gateway Timeout")
        assert f"connecting to https://127.0.0.1:{port} timed out" in srv.wait_log("errors", "timed out")
    finally:
        listener.close()


def test_an_http2_client_through_the_proxy(ocsi_server, backend, tmp_path):
    from ocsi.testing import H2Client, self_signed

    cert, key = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    b = backend()
    srv = ocsi_server(
        f'<ocsigen><server><port protocol="HTTPS">127.0.0.1:{{port}}</port>'
        f"<ssl><certificate>{tmp_path}/c.pem</certificate><privatekey>{tmp_path}/k.pem</privatekey></ssl>"
        f"<logdir>{{tmp}}/log</logdir>{EXT}"
        f'<host><revproxy suburl="(.*)" dest="{b.url}/\\1"/></host></server></ocsigen>', full=True)
    c = H2Client(srv.port)
    get, post = c.request("/echo/a?b=1"), c.request("/echo/up", "POST", b"x" * 30_000)
    got = c.responses(2)
    info = json.loads(got[get][1])
    assert info["target"] == "/echo/a?b=1" and info["method"] == "GET"
    assert not any(n.startswith(":") for n, _ in info["headers"])  # no pseudo-header goes on
    assert json.loads(got[post][1])["method"] == "POST"
    assert b"30000" in got[post][1]
