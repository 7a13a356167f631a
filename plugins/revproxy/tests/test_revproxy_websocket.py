"""WebSocket through the proxy (wsproto on both ends); other upgrades are not passed on."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from ocsi.testing import WebSocketClient
from conftest import EXT
from wsbackend import WebSocketBackend
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    TextMessage,
)


@pytest.fixture
def ws_backend() -> Iterator[Any]:
    b = WebSocketBackend()
    yield b
    b.stop()


def Client(port: int, target: str = "/chat") -> WebSocketClient:  # noqa: N802 - reads as a class
    return WebSocketClient(port, target, host="front.example")


def test_messages_both_ways(ocsi_server, ws_backend):
    srv = ocsi_server(EXT + f'<host><revproxy suburl="(.*)" dest="http://127.0.0.1:{ws_backend.port}/\\1"/></host>')
    c = Client(srv.port)
    assert any(isinstance(e, AcceptConnection) for e in c.events(AcceptConnection))
    c.send(TextMessage(data="héllo"))
    assert [e.data for e in c.events(TextMessage) if isinstance(e, TextMessage)] == ["héllo"]
    big = bytes(range(256)) * 1000  # 256 kB: more than one read on every hop
    c.send(BytesMessage(data=big))
    got = b"".join(bytes(e.data) for e in c.events(BytesMessage) if isinstance(e, BytesMessage))
    while len(got) < len(big):
        got += b"".join(bytes(e.data) for e in c.events(BytesMessage) if isinstance(e, BytesMessage))
    assert got == big
    c.send(Ping(payload=b"p"))
    assert any(isinstance(e, Pong) and e.payload == b"p" for e in c.events(Pong))
    c.send(CloseConnection(code=1000, reason="bye"))
    closing = [e for e in c.events(CloseConnection) if isinstance(e, CloseConnection)]
    assert closing and closing[0].code == 1000
    c.sock.close()
    hs = ws_backend.handshakes[0]
    assert hs["target"] == "/chat" and hs["x-forwarded-for"] == "127.0.0.1"
    assert "101" in srv.wait_log("access", " 101 ")


def test_a_refused_handshake_is_the_backends_answer(ocsi_server, ws_backend):
    srv = ocsi_server(EXT + f'<host><revproxy suburl="(.*)" dest="http://127.0.0.1:{ws_backend.port}/\\1"/></host>')
    c = Client(srv.port, "/deny")
    events = c.events(RejectData)
    assert any(isinstance(e, RejectConnection) and e.status_code == 403 for e in events)
    c.sock.close()


def test_other_upgrades_are_not_passed_on(ocsi_server, backend):
    b = backend()
    srv = ocsi_server(EXT + f'<host><revproxy suburl="(.*)" dest="{b.url}/\\1"/></host>')
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                  b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
        out = b""
        while b"}" not in out:
            out += s.recv(65536)
    assert out.startswith(b"HTTP/1.1 200 ")  # answered as HTTP/1.1, not switched
    info = json.loads(out.partition(b"\r\n\r\n")[2])
    names = {n for n, _ in info["headers"]}
    assert not names & {"upgrade", "connection", "http2-settings"}
