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


def _bounded(ocsi_server, ws_backend, limit: str):  # type: ignore[no-untyped-def]
    srv = ocsi_server(EXT + f'<host><revproxy suburl="(.*)" websocket-max-message="{limit}" '
                      f'dest="http://127.0.0.1:{ws_backend.port}/\\1"/></host>')
    c = Client(srv.port)
    assert any(isinstance(e, AcceptConnection) for e in c.events(AcceptConnection))
    return srv, c


def _closed_with(c: WebSocketClient) -> int | None:
    closing = [e for e in c.events(CloseConnection) if isinstance(e, CloseConnection)]
    assert closing, "no Close frame"
    return closing[0].code


def _backend_closed_with(ws_backend, code: int) -> None:  # type: ignore[no-untyped-def]
    import time
    deadline = time.monotonic() + 10
    while code not in ws_backend.closes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert code in ws_backend.closes


def test_a_message_from_the_client_over_the_bound_closes_with_1009(ocsi_server, ws_backend):
    srv, c = _bounded(ocsi_server, ws_backend, "1000")
    c.send(BytesMessage(data=b"a" * 1000))  # at the bound: relayed
    got = b"".join(bytes(e.data) for e in c.events(BytesMessage) if isinstance(e, BytesMessage))
    assert got == b"a" * 1000
    c.send(BytesMessage(data=b"b" * 1001))
    assert _closed_with(c) == 1009
    _backend_closed_with(ws_backend, 1009)
    c.sock.close()
    assert "over websocket-max-message" in srv.wait_log("warnings", "websocket-max-message")


def test_a_fragmented_message_is_counted_whole(ocsi_server, ws_backend):
    _, c = _bounded(ocsi_server, ws_backend, "1000")
    c.send(BytesMessage(data=b"a" * 600, message_finished=False))
    c.send(Ping(payload=b"between"))  # a control frame inside the message does not count
    c.send(BytesMessage(data=b"a" * 600, message_finished=True))
    assert _closed_with(c) == 1009
    _backend_closed_with(ws_backend, 1009)
    c.sock.close()


def test_a_message_from_the_backend_over_the_bound_closes_with_1009(ocsi_server, ws_backend):
    _, c = _bounded(ocsi_server, ws_backend, "1000")
    c.send(TextMessage(data="grow 900"))
    got = b"".join(bytes(e.data) for e in c.events(BytesMessage) if isinstance(e, BytesMessage))
    assert got == b"g" * 900
    c.send(TextMessage(data="grow 5000"))
    assert _closed_with(c) == 1009
    _backend_closed_with(ws_backend, 1009)
    c.sock.close()


def test_no_bound_with_infinity(ocsi_server, ws_backend):
    _, c = _bounded(ocsi_server, ws_backend, "infinity")
    c.send(TextMessage(data="grow 20000000"))  # past the 16 MiB default
    n = 0
    while n < 20_000_000:
        n += sum(len(e.data) for e in c.events(BytesMessage) if isinstance(e, BytesMessage))
    assert n == 20_000_000
    c.sock.close()


def test_the_bound_is_checked(ocsi_memory):
    from ocsi.testing import assert_config_error
    assert_config_error(ocsi_memory, EXT + '<host>\n<revproxy suburl="(.*)" dest="http://a/" '
                        'websocket-max-message="0"/></host>', "at least one byte", line=2)
    assert_config_error(ocsi_memory, EXT + '<host>\n<revproxy suburl="(.*)" dest="http://a/" '
                        'websocket-max-message="lots"/></host>', "not a valid size", line=2)
