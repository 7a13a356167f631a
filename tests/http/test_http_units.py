"""Pure functions of the connection layer: dates, head serialisation, head parsing helpers."""

from __future__ import annotations

import socket

import h11
import pytest

from ocsi._http.dates import date_header_line, format_http_date, http_date_now, parse_http_date
from ocsi._http.incoming import HeadError, error_status, host_name, parse_head, peer_address
from ocsi._http.limits import Limits
from ocsi._http.wire import CHUNKED, EOF, LENGTH, NONE, build_head, status_line, wire_name

SERVER = "Server: S\r\n"


def test_dates():
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    for text in ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                 "Sun Nov  6 08:49:37 1994"):
        assert parse_http_date(text) == 784111777, text
    assert parse_http_date("yesterday") is None
    assert date_header_line() is date_header_line()  # cached within the second
    assert date_header_line() == f"Date: {http_date_now()}\r\n"


def test_wire_names_and_status_lines():
    assert wire_name("content-type") == "Content-Type"
    assert wire_name("www-authenticate") == "WWW-Authenticate"
    assert wire_name("x-my-header") == "X-My-Header"
    for bad in ("a b", "a:b", "a\r\nb", ""):
        with pytest.raises(ValueError):
            wire_name(bad)
    assert status_line(200) == "HTTP/1.1 200 OK\r\n"
    assert status_line(299) == "HTTP/1.1 299 \r\n"
    assert status_line(404, "Nope") == "HTTP/1.1 404 Nope\r\n"
    for bad in (100, 101, 99, 1000, "200"):
        with pytest.raises(ValueError):
            status_line(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        status_line(200, "OK\r\nX: y")


def _head(status=200, headers=(), length=None, is_head=False, http10=False, keep=True):
    head, framing, n, keep = build_head(status, None, list(headers), length, is_head, http10,
                                        keep, SERVER)
    text = head.decode("latin-1")
    assert text.endswith("\r\n\r\n")
    lines = text.split("\r\n")[1:-2]
    return dict(line.split(": ", 1) for line in lines), framing, n, keep


def test_build_head_framing():
    h, framing, n, keep = _head(length=5, headers=[("content-length", "99"),
                                                   ("transfer-encoding", "chunked")])
    assert h["Content-Length"] == "5" and "Transfer-Encoding" not in h
    assert (framing, n, keep) == (LENGTH, 5, True) and h["Server"] == "S" and "Date" in h
    h, framing, n, _ = _head(headers=[("content-length", "7")])
    assert (h["Content-Length"], framing, n) == ("7", LENGTH, 7)
    h, framing, n, _ = _head()
    assert h["Transfer-Encoding"] == "chunked" and framing == CHUNKED and n is None
    h, framing, _, keep = _head(http10=True)
    assert "Transfer-Encoding" not in h and framing == EOF and not keep
    assert h["Connection"] == "close"
    h, framing, _, keep = _head(http10=True, is_head=True)
    assert framing == NONE and keep and h["Connection"] == "keep-alive"
    h, framing, _, keep = _head(http10=True, length=3)
    assert framing == LENGTH and keep and h["Connection"] == "keep-alive"
    h, framing, _, _ = _head(length=10, is_head=True)
    assert h["Content-Length"] == "10" and framing == NONE
    h, framing, n, _ = _head(204, headers=[("content-length", "3")], length=3)
    assert "Content-Length" not in h and framing == NONE
    h, framing, _, keep = _head(headers=[("connection", "Close")], length=0)
    assert not keep and h["Connection"] == "close"
    h, _, _, _ = _head(headers=[("server", "Own"), ("date", "D")], length=0)
    assert h["Server"] == "Own" and h["Date"] == "D"
    with pytest.raises(ValueError):
        _head(headers=[("content-length", "1x")])
    with pytest.raises(ValueError):
        _head(headers=[("x", "a\nb")], length=0)
    with pytest.raises(UnicodeEncodeError):
        _head(headers=[("x", "€")], length=0)


def _event(raw: bytes) -> h11.Request:
    c = h11.Connection(h11.SERVER)
    c.receive_data(raw)
    ev = c.next_event()
    assert type(ev) is h11.Request
    return ev


def test_parse_head():
    L = Limits()
    req, length, expect, keep = parse_head(
        _event(b"POST /x?y HTTP/1.1\r\nHost: A.b:1\r\nContent-Length: 3\r\n"
               b"Expect: 100-continue\r\nConnection: foo, close\r\n\r\n"), L, 80, True, "::1")
    assert (req.method, req.host, req.port, req.secure, req.client) == ("POST", "a.b", 80, True,
                                                                        "::1")
    assert (length, expect, keep) == (3, True, False)
    req, length, expect, keep = parse_head(
        _event(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n"),
        L, 80, False, "c")
    assert (length, expect, keep) == (0, False, True)
    _, length, _, keep = parse_head(
        _event(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), L, 1, False,
        "c")
    assert (length, keep) == (None, True)
    with pytest.raises(HeadError) as e:
        parse_head(_event(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"),
                   Limits(max_headers=2), 1, False, "c")
    assert e.value.status == 431


def test_host_name_and_error_status():
    assert host_name("Example.ORG:80") == "example.org"
    assert host_name("[::1]:8080") == "[::1]"
    assert host_name("") is None
    L = Limits(max_request_line=50)
    exc = h11.RemoteProtocolError("x", error_status_hint=400)
    assert error_status(exc, b"GET / HTTP/2.0\r\n", L) == 505
    assert error_status(exc, b"GET / HTTP/1.1\r\nBad header\r\n", L) == 400
    assert error_status(exc, b"GET /" + b"a" * 60, L) == 414
    big = h11.RemoteProtocolError("too long", error_status_hint=431)
    assert error_status(big, b"GET / HTTP/1.1\r\nX: " + b"a" * 100, L) == 431


class _FakeTransport:
    def __init__(self, peer, family=socket.AF_INET):
        self.peer = peer
        self.family = family

    def get_extra_info(self, name):
        if name == "peername":
            return self.peer
        if name == "socket":
            return type("S", (), {"family": self.family})()
        return None


def test_peer_address():
    assert peer_address(_FakeTransport(("10.1.2.3", 5))) == "10.1.2.3"
    assert peer_address(_FakeTransport(("fe80::1", 5, 0, 2), socket.AF_INET6)) == "fe80::1"
    assert peer_address(_FakeTransport(("::ffff:10.0.0.1", 5, 0, 0), socket.AF_INET6)) == "10.0.0.1"
    assert peer_address(_FakeTransport("", socket.AF_UNIX)) == "unix:"



def test_headers_get_list_joins_repeated_lines_in_order():
    from ocsi import Headers

    h = Headers([("X-Forwarded-For", "6.6.6.6, 1.2.3.4"), ("host", "a"),
                 ("x-forwarded-for", " 10.0.0.2 ,, "), ("X-FORWARDED-FOR", "")])
    assert h.get_list("x-forwarded-for") == ["6.6.6.6", "1.2.3.4", "10.0.0.2"]
    assert h.get_list("absent") == []
