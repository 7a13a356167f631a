"""A real backend for the proxy tests: an HTTP/1.1 server on 127.0.0.1 in its own thread.

It parses requests with h11 (server side) and answers by path:

- ``/echo…``: a JSON body with the method, target, headers (in order) and the body's length and
  SHA-256; ``X-Backend`` names the backend.
- ``/bytes/N`` (``?chunked`` to send it chunked): N bytes, streamed in 64 KiB pieces.
- ``/status/N``: that status, a small body (none for 204/304).
- ``/redirect``: 302 to ``http://<its own address>/moved``.
- ``/trailers``: a chunked body and, when the request says ``TE: trailers``, the trailer
  fields ``x-checksum`` (and a ``content-type`` a trailer must not carry);
- ``/hold/S``: the answer after S seconds, unless the proxy closes the connection first
  (recorded in ``abandoned``);
- ``/slowhead/S``: the head after S seconds; ``/stall``: a head and 10 bytes of 1000000, then silence.
- ``/diemid``: a head announcing 1000000 bytes, 100 of them, then the connection closes;
  ``/diesmall`` the same with 1000.
- ``/eof``: an HTTP/1.0 answer delimited by the connection's close.
- ``/sink``: reads the body and answers its length.
- ``/discard``: reads the body without keeping it; answers its length.
- ``/once…``: answered on a new connection; on a reused one the connection is closed without
  an answer (a backend that timed out an idle connection just as the proxy reused it).

``connections`` counts accepted connections and ``requests`` the requests served, so tests can
see reuse. TLS when given a context. Everything stops with :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
from typing import Any

import h11


class ThreadedServer:
    """An asyncio server on 127.0.0.1 (an ephemeral port) in a thread of its own, with
    :meth:`_serve` answering each connection; :meth:`stop` aborts every open one."""

    def __init__(self, name: str, tls: ssl.SSLContext | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._tls = tls
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self._server = self.loop.run_until_complete(
                asyncio.start_server(self._serve, sock=sock, ssl=tls))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True, name=name)
        self.thread.start()
        ready.wait(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Backend(ThreadedServer):
    def __init__(self, name: str = "b1", tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.connections = 0
        self.requests = 0
        self.seen: list[dict[str, Any]] = []
        #: ``/hold/S`` requests whose connection the proxy closed before the answer.
        self.abandoned: list[str] = []
        super().__init__(f"backend-{name}", tls)

    # -- serving ---------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        served = 0
        try:
            while True:
                event = await self._next(conn, reader)
                if type(event) is not h11.Request:
                    return
                if served and event.target.startswith(b"/once"):
                    return  # closes without answering
                served += 1
                self.requests += 1
                keep = await self._answer(conn, event, reader, writer)
                if not keep or conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            return event

    async def _body(self, conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            event = await self._next(conn, reader)
            if type(event) is h11.Data:
                parts.append(bytes(event.data))
            elif type(event) is h11.EndOfMessage:
                return b"".join(parts)
            else:
                raise ConnectionError("no body")

    async def _answer(self, conn: h11.Connection, req: h11.Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        target = req.target.decode()
        path, _, query = target.partition("?")
        headers = [(n.decode(), v.decode()) for n, v in req.headers.raw_items()]
        base = [("x-backend", self.name)]

        async def send(status: int, hdrs: list[tuple[str, str]], body: bytes = b"") -> None:
            writer.write(conn.send(h11.Response(status_code=status, headers=base + hdrs)))
            if body:
                writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()

        if path.startswith("/echo") or path == "/sink" or path.startswith("/once"):
            body = await self._body(conn, reader)
            info = {"method": req.method.decode(), "target": target, "headers": headers,
                    "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                    "backend": self.name}
            self.seen.append(info)
            data = json.dumps(info).encode()
            await send(200, [("content-type", "application/json"),
                             ("content-length", str(len(data)))], data)
            return True
        if path == "/discard":
            n = 0
            while type(event := await self._next(conn, reader)) is h11.Data:
                n += len(event.data)
            data = str(n).encode()
            await send(200, [("content-length", str(len(data)))], data)
            return True
        await self._body(conn, reader)
        if path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            chunked = query == "chunked"
            hdrs = [("content-type", "application/octet-stream")]
            if not chunked:
                hdrs.append(("content-length", str(n)))
            writer.write(conn.send(h11.Response(status_code=200, headers=base + hdrs)))
            piece = bytes(range(256)) * 256  # 64 KiB
            sent = n if req.method == b"HEAD" else 0
            while sent < n:
                chunk = piece[: min(len(piece), n - sent)]
                writer.write(conn.send(h11.Data(data=chunk)))
                sent += len(chunk)
                await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            return True
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            body = b"" if code in (204, 304) else f"status {code}".encode()
            hdrs = [("content-length", str(len(body)))] if code not in (204, 304) else []
            if code == 304:
                hdrs = [("etag", '"x"')]
            await send(code, hdrs, body)
            return True
        if path == "/redirect":
            await send(302, [("location", f"http://127.0.0.1:{self.port}/moved"),
                             ("content-length", "0")])
            return True
        if path == "/trailers":  # chunked, with trailer fields if the request said TE: trailers
            te = dict(headers).get("te", "")
            writer.write(conn.send(h11.Response(status_code=200, headers=base + [
                ("transfer-encoding", "chunked"), ("trailer", "x-checksum")])))
            writer.write(conn.send(h11.Data(data=b"body")))
            trailers = [("x-checksum", "abc123"), ("content-type", "text/evil")] \
                if "trailers" in te else []
            writer.write(conn.send(h11.EndOfMessage(headers=trailers)))
            await writer.drain()
            return True
        if path.startswith("/hold/"):  # answers after S seconds, unless the proxy leaves first
            deadline = asyncio.get_running_loop().time() + float(path.split("/")[2])
            try:
                await self._body(conn, reader)
                while asyncio.get_running_loop().time() < deadline:
                    if reader.at_eof() or reader.exception() is not None:
                        raise ConnectionResetError("closed")
                    await asyncio.sleep(0.02)
            except ConnectionError:  # closed or reset by the proxy
                self.abandoned.append(path)
                return False
            await send(200, [("content-length", "4")], b"late")
            return True
        if path.startswith("/slowhead/"):
            await asyncio.sleep(float(path.split("/")[2]))
            await send(200, [("content-length", "4")], b"late")
            return True
        if path == "/stall":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"s" * 10)
            await writer.drain()
            await asyncio.sleep(30)
            return False
        if path in ("/diemid", "/diesmall"):
            size = 1000000 if path == "/diemid" else 1000
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"d" * 100)
            await writer.drain()
            return False
        if path == "/eof":
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"e" * 5000)
            await writer.drain()
            return False
        await send(404, [("content-length", "9")], b"not found")
        return True


class RawBackend(ThreadedServer):
    """A backend that parses nothing: it records each request head as the bytes it received
    (what a lenient parser would read) and answers ``200 ok``, keeping the connection. For
    the tests that prove what the proxy never writes."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        super().__init__("raw-backend")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
