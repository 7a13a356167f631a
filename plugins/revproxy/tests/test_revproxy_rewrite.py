"""``rewritelocation`` (redirects to the backend's address sent back to the client's) and
``requestbuffer`` (chunked request bodies sent with a Content-Length), as attributes of
``<revproxy>``; without them a configuration behaves as Ocsigen's."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import EXT
from ocsi import ConfigError
from ocsi.testing import make_request
from ocsi_ext_revproxy import parse_destination
from ocsi_ext_revproxy.redirects import prefixes, rewrite_redirects, rewrite_url


def proxy(ocsi_server: Callable[..., Any], body: str) -> Any:
    return ocsi_server(EXT + f"<host>{body}</host>")


def _chunked(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", path, body=iter([body[:len(body) // 2], body[len(body) // 2:]]),
                     encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("backend_target, client_target, expected", [
    ("/v1/login", "/app/login", ("/v1", "/app")),
    ("/login", "/app/login", ("", "/app")),
    ("/x/y?q=1", "/x/y?q=1", ("", "")),
    ("/b/c", "/ab/c", ("/b", "/ab")),  # cut at a /, never inside a name
    ("/other", "/thing", ("", "")),
])
def test_prefixes(backend_target, client_target, expected):
    assert prefixes(backend_target, client_target) == expected


@pytest.mark.parametrize("location, expected", [
    ("http://back:9000/v1/next", "https://front.example/app/next"),
    ("HTTP://back:9000/v1", "https://front.example/app"),
    ("http://back:9000/elsewhere", "https://front.example/elsewhere"),
    ("/v1/next?x=1", "/app/next?x=1"),
    ("http://back:9001/v1/next", "http://back:9001/v1/next"),  # another port: not the backend
    ("https://back:9000/v1/next", "https://back:9000/v1/next"),  # another scheme
    ("http://other/v1/next", "http://other/v1/next"),
    ("next", "next"),
    ("http://[::1/broken", "http://[::1/broken"),
])
def test_rewrite_url(location, expected):
    dest = parse_destination("http://back:9000/v1/login")
    request = make_request("GET", "/app/login", host="front.example", secure=True)
    assert rewrite_url(location, dest, request) == expected


def test_refresh_and_no_host():
    dest = parse_destination("http://back:9000/login")
    request = make_request("GET", "/login", host="front:8080")
    fields = [("refresh", "5; URL='http://back:9000/next'"), ("location", "http://back:9000/"),
              ("content-location", "http://back:9000/x")]
    assert rewrite_redirects(fields, dest, request) == [
        ("refresh", "5; URL='http://front:8080/next'"), ("location", "http://front:8080/"),
        ("content-location", "http://back:9000/x")]
    bare = make_request("GET", "/login", host=None, version="1.0")
    assert rewrite_url("http://back:9000/next", dest, bare) == "/next"


def test_location_is_rewritten_only_when_asked(ocsi_server, backend):
    b = backend()
    plain = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    assert plain.get("/redirect").headers["Location"] == f"{b.url}/moved"  # Ocsigen's behaviour
    srv = proxy(ocsi_server, f'<site path="front"><revproxy suburl="(.*)" dest="{b.url}/\\1" '
                             'rewritelocation="rewritelocation"/></site>')
    r = srv.get("/front/redirect", host="www.example")
    assert r.status == 302 and r.headers["Location"] == "http://www.example/front/moved"


def test_request_buffer(ocsi_server, backend):
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1" requestbuffer="1KiB"/>')
    status, data = _chunked(srv.port, "/echo", b"z" * 1000)
    info = json.loads(data)
    assert status == 200 and info["length"] == 1000
    headers = dict(info["headers"])
    assert headers["content-length"] == "1000" and "transfer-encoding" not in headers
    status, _ = _chunked(srv.port, "/echo", b"z" * 2000)
    assert status == 413
    streamed = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    status, data = _chunked(streamed.port, "/echo", b"z" * 2000)  # HTTP/1.1: streamed chunked
    assert status == 200 and dict(json.loads(data)["headers"])["transfer-encoding"] == "chunked"


def test_a_backend_seen_speaking_http10_gets_lengths(ocsi_server, backend):
    """Without requestbuffer, a backend that answered in HTTP/1.0 gets buffered bodies (1 MiB
    at most); with requestbuffer="0" it gets a 411 instead of an empty body."""
    b = backend()
    srv = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/>')
    assert srv.get("/eof").status == 200  # this backend's /eof answers in HTTP/1.0
    status, data = _chunked(srv.port, "/echo", b"q" * 5000)
    assert status == 200 and dict(json.loads(data)["headers"])["content-length"] == "5000"
    refusing = proxy(ocsi_server, f'<revproxy suburl="(.*)" dest="{b.url}/\\1" requestbuffer="0"/>')
    assert refusing.get("/eof").status == 200
    assert _chunked(refusing.port, "/echo", b"q" * 10)[0] == 411


@pytest.mark.parametrize("value, message", [("lots", "'lots' is not a valid size"),
                                             ("infinity", "requestbuffer needs a size")])
def test_request_buffer_errors(ocsi_memory, value, message):
    with pytest.raises(ConfigError, match=message):
        ocsi_memory(EXT + f'<host><revproxy suburl="(.*)" dest="http://h/\\1" requestbuffer="{value}"/></host>')


def test_a_crafted_refresh_is_rewritten_in_linear_time():
    # spaces then a non-space: quadratic for a backtracking matcher (100 000 spaces: minutes)
    dest = parse_destination("http://back:9000/login")
    request = make_request("GET", "/login", host="front:8080")
    value = "0; url=http://back:9000/x" + " " * 100_000 + "y"
    [(name, out)] = rewrite_redirects([("refresh", value)], dest, request)
    assert name == "refresh" and out.startswith("0; url=http")
    quoted = [("refresh", '5;url="http://back:9000/a b" '), ("refresh", "5 , URL = 'http://back:9000/'"),
              ("refresh", "5"), ("refresh", "5; url=http://elsewhere/")]
    assert [v for _, v in rewrite_redirects(quoted, dest, request)] == [
        '5;url="http://front:8080/a b"', "5 , URL = 'http://front:8080/'", "5",
        "5; url=http://elsewhere/"]
