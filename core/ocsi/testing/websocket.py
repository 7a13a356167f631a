"""A blocking WebSocket client over a plain socket, for tests of servers that upgrade
(revproxy's tunnels, ASGI applications). Frames by wsproto, imported when a client is made,
so the test kit itself does not require it."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any


class WebSocketClient:
    """``WebSocketClient(port, "/chat")`` sends the handshake at once; ``events(Until)``
    reads until an event of that type arrives (or the server closes) and returns them all."""

    def __init__(self, port: int, target: str = "/", host: str = "localhost",
                 subprotocols: Sequence[str] = (), timeout: float = 10.0) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import Request

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=host, target=target,
                                               subprotocols=list(subprotocols))))

    def events(self, until: type) -> list[Any]:
        got: list[Any] = []
        while not any(isinstance(e, until) for e in got):
            data = self.sock.recv(65536)
            if not data:
                break
            self.ws.receive_data(data)
            got += list(self.ws.events())
        return got

    def send(self, event: Any) -> None:
        self.sock.sendall(self.ws.send(event))

    def close(self) -> None:
        self.sock.close()
