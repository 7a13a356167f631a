"""A WebSocket echo backend (wsproto, server side) on 127.0.0.1 in its own thread.

It accepts the handshake on any path but ``/deny`` (answered 403), echoes every text and
binary message, answers pings, and closes when the client does. ``handshakes`` records the
request headers each handshake carried, ``closes`` the code of each Close it received. The text
message ``grow N`` is answered with a binary message of N bytes.
"""

from __future__ import annotations

import asyncio
import socket
import threading

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)


class WebSocketBackend:
    def __init__(self) -> None:
        self.handshakes: list[dict[str, str]] = []
        self.closes: list[int | None] = []
        self.loop = asyncio.new_event_loop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, sock=sock))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        text: list[str] = []
        data: list[bytes] = []
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                ws.receive_data(chunk)
                for event in ws.events():
                    if isinstance(event, Request):
                        self.handshakes.append({"target": event.target,
                                                **{k.decode(): v.decode() for k, v in event.extra_headers}})
                        if event.target == "/deny":
                            writer.write(ws.send(RejectConnection(status_code=403)))
                        else:
                            writer.write(ws.send(AcceptConnection()))
                    elif isinstance(event, TextMessage):
                        text.append(event.data)
                        if event.message_finished:
                            message = "".join(text)
                            if message.startswith("grow "):
                                writer.write(ws.send(BytesMessage(data=b"g" * int(message[5:]))))
                            else:
                                writer.write(ws.send(TextMessage(data=message)))
                            text.clear()
                    elif isinstance(event, BytesMessage):
                        data.append(bytes(event.data))
                        if event.message_finished:
                            writer.write(ws.send(BytesMessage(data=b"".join(data))))
                            data.clear()
                    elif isinstance(event, Ping):
                        writer.write(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        self.closes.append(event.code)
                        writer.write(ws.send(event.response()))
                        await writer.drain()
                        return
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
