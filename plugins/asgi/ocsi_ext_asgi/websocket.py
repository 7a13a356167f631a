"""The ASGI ``websocket`` scope, frames by wsproto, over the core's 101 tunnel.

The handshake waits for the application: ``websocket.accept`` (with its subprotocol and
headers) becomes the 101, ``websocket.close`` before it a 403, and the
``websocket.http.response`` extension a denial answer of the application's own. Then frames go
both ways: messages are bounded (``websocket-max-message``, ``MAX_MESSAGE`` by default; larger is a 1009 close), pings are answered
by wsproto, and at most ``QUEUED`` messages wait for the application before ocsi stops reading
from the client (back-pressure through the tunnel).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ocsi import (
    BytesBody,
    Headers,
    Request,
    Response,
    Tunnel,
    TunnelBody,
    error_response,
)
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import (
    LocalProtocolError,
    RemoteProtocolError,
    generate_accept_token,
)

from .http import ASGI, http_scope

if TYPE_CHECKING:
    from . import ASGIApp

__all__ = ["serve_websocket", "wants_websocket"]

log = logging.getLogger("ocsi.ext.asgi")

MAX_MESSAGE = 16 * 1024 * 1024
QUEUED = 16


def wants_websocket(request: Request) -> bool:
    upgrade = request.headers.get("upgrade")
    if upgrade is None:
        return False  # every plain request: one look at the fields
    tokens = {t.strip().lower() for v in request.headers.get_all("connection") for t in v.split(",")}
    return (upgrade.strip().lower() == "websocket" and "upgrade" in tokens
            and request.method == "GET" and request.headers.get("sec-websocket-key") is not None)


def _scope(request: Request, state: dict[str, Any] | None) -> dict[str, Any]:
    scope = http_scope(request, state)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if request.secure else "ws"
    scope.pop("method", None)
    protocols = [p.strip() for v in request.headers.get_all("sec-websocket-protocol")
                 for p in v.split(",") if p.strip()]
    scope["subprotocols"] = protocols
    scope["extensions"] = {"websocket.http.response": {}}
    scope["asgi"] = ASGI
    return scope


class _Session:
    def __init__(self) -> None:
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUED)
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.to_app.put_nowait({"type": "websocket.connect"})
        self.closed = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        return await self.to_app.get()

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed.is_set():
            raise OSError("the WebSocket is closed")
        await self.from_app.put(message)


async def serve_websocket(step: ASGIApp, request: Request) -> Response:
    session = _Session()
    where = f"{step.where} ({step.spec})"
    task = step.start_cycle(_scope(request, step.state), session.receive, session.send)
    first = await _next(session, task)
    if first is None:
        _report(task, where)
        return error_response(500)
    kind = first.get("type")
    if kind == "websocket.close":
        return error_response(403)
    if kind == "websocket.http.response.start":
        return await _denial(session, task, first, where)
    if kind != "websocket.accept":
        log.error("%s: %r before websocket.accept", where, kind)
        return error_response(500)
    key = request.headers.get("sec-websocket-key") or ""
    headers = [("upgrade", "websocket"), ("connection", "Upgrade"),
               ("sec-websocket-accept", generate_accept_token(key.encode()).decode())]
    if first.get("subprotocol"):
        headers.append(("sec-websocket-protocol", str(first["subprotocol"])))
    headers += [(bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                for n, v in first.get("headers", ())]

    async def run(tunnel: Tunnel) -> None:
        await _relay(tunnel, session, task, where, step.max_message)

    return Response(101, Headers.from_lower(headers), TunnelBody(run))


async def _next(session: _Session, task: asyncio.Task[None]) -> dict[str, Any] | None:
    getter = asyncio.ensure_future(session.from_app.get())
    done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    return None


async def _denial(session: _Session, task: asyncio.Task[None], start: dict[str, Any],
                  where: str) -> Response:
    parts = []
    while True:
        message = await _next(session, task)
        if message is None or message.get("type") != "websocket.http.response.body":
            break
        parts.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break
    headers = [(bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1"))
               for n, v in start.get("headers", ()) if bytes(n).lower() != b"content-length"]
    session.closed.set()
    return Response(int(start.get("status", 403)), Headers.from_lower(headers),
                    BytesBody(b"".join(parts)))


async def _relay(tunnel: Tunnel, session: _Session, task: asyncio.Task[None], where: str,
                 max_message: int | None) -> None:
    ws = Connection(ConnectionType.SERVER)
    closing = {"code": 1006}

    async def from_client() -> None:
        text: list[str] = []
        data: list[bytes] = []
        size = 0
        while True:
            chunk = await tunnel.read()
            if not chunk:
                break
            try:
                ws.receive_data(chunk)
            except RemoteProtocolError:
                closing["code"] = 1002
                break
            for event in ws.events():
                if isinstance(event, Message):
                    size += len(event.data)
                    if max_message is not None and size > max_message:
                        tunnel.write(ws.send(CloseConnection(code=1009, reason="message too big")))
                        closing["code"] = 1009
                        return
                    (text if isinstance(event, TextMessage) else data).append(event.data)
                    if event.message_finished:
                        message: dict[str, Any] = {"type": "websocket.receive"}
                        if isinstance(event, TextMessage):
                            message["text"] = "".join(text)
                        else:
                            message["bytes"] = b"".join(data)
                        text, data, size = [], [], 0
                        await session.to_app.put(message)  # waits while the app is behind
                elif isinstance(event, Ping):
                    tunnel.write(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    closing["code"] = event.code
                    if ws.state is not ConnectionState.CLOSED:
                        tunnel.write(ws.send(event.response()))
                    return
        # the client went away without a close frame

    async def from_app() -> None:
        while True:
            message = await session.from_app.get()
            kind = message.get("type")
            if kind == "websocket.send":
                if message.get("text") is not None:
                    out = ws.send(TextMessage(data=message["text"]))
                else:
                    out = ws.send(BytesMessage(data=message.get("bytes") or b""))
                tunnel.write(out)
                await tunnel.drain()
            elif kind == "websocket.close":
                if ws.state is ConnectionState.OPEN:
                    tunnel.write(ws.send(CloseConnection(code=int(message.get("code", 1000)),
                                                         reason=message.get("reason") or "")))
                closing["code"] = int(message.get("code", 1000))
                return
            else:
                log.error("%s: unexpected %r on an open WebSocket", where, kind)
                return

    reader = asyncio.ensure_future(from_client())
    writer = asyncio.ensure_future(from_app())
    try:
        done, _ = await asyncio.wait({reader, writer, task}, return_when=asyncio.FIRST_COMPLETED)
        if task in done and not task.cancelled() and task.exception() is not None:
            _report(task, where)
            if ws.state is ConnectionState.OPEN:
                tunnel.write(ws.send(CloseConnection(code=1011)))
        elif writer in done:
            await asyncio.sleep(0)  # let a close answer from the client be read, if it comes
    except (LocalProtocolError, OSError):
        pass
    finally:
        session.closed.set()
        for t in (reader, writer):
            t.cancel()
        try:
            session.to_app.put_nowait({"type": "websocket.disconnect", "code": closing["code"]})
        except asyncio.QueueFull:
            pass


def _report(task: asyncio.Task[None], where: str) -> None:
    exc = task.exception() if task.done() and not task.cancelled() else None
    if exc is not None:
        log.error("%s: the WebSocket application failed", where, exc_info=exc)
    else:
        log.error("%s: the WebSocket application returned before accepting", where)
