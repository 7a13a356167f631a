"""The test kit's own pieces: the content steps for tests and the raw-socket reader."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from ocsi.testing import CONTENT, RawReader, assert_config_error, raw_exchange


def test_content_steps(ocsi_memory: Callable[..., Any]) -> None:
    srv = ocsi_memory(CONTENT + '<host><page path="a" body="A" type="text/x"/><fail status="410"/>'
                      '<page path="marked" body="M"/><mark value="v"/></host>')
    r = srv.get("/a")
    assert (r.status, r.body, r.headers["content-type"]) == (200, b"A", "text/x")
    assert srv.get("/b").status == 410
    assert srv.get("/marked").headers["x-mark"] == "v"
    echo = ocsi_memory(CONTENT + "<host><echo/></host>").get("/x/y", client="10.0.0.7")
    assert echo.text == "client=10.0.0.7 peer=10.0.0.7 secure=False fwd= sub=x/y"


def test_content_status_is_checked(ocsi_memory: Callable[..., Any]) -> None:
    assert_config_error(ocsi_memory, CONTENT + '<host>\n<fail status="nine"/></host>',
                        "status='nine' is not an HTTP status", line=2)


def test_raw_reader_reads_pipelined_responses(ocsi_server: Callable[..., Any]) -> None:
    srv = ocsi_server(CONTENT + '<host><page body="hello"/></host>')
    get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    first, second = raw_exchange(srv.port, get * 2, n=2)
    assert (first.status, first.body, second.body) == (200, b"hello", b"hello")
    assert first.header("Content-Length") == "5" and first.all("content-type") == ["text/plain"]
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reader = RawReader(s)
        head = reader.response(head_request=True)
        assert head.status == 200 and head.body == b"" and reader.at_eof()
