"""Real-socket harness for the connection layer: a ConnectionManager served on 127.0.0.1 from an
event loop running in a background thread, and small blocking HTTP client helpers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ocsi.http.connection import ConnectionManager
from ocsi.http.limits import Limits

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

from ocsi.http import fasthead

LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])
TIMEOUT = 5.0
#: Every test here runs with each request-head parser: h11 (the reference) and, when installed,
#: the httptools fast path (``<httpparser>``), which must answer everything the same way.
PARSERS = ["h11"] + (["httptools"] if fasthead.AVAILABLE else [])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "http_parser" in metafunc.fixturenames:
        metafunc.parametrize("http_parser", PARSERS, indirect=True)


@pytest.fixture(autouse=True)
def http_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``$OCSI_HTTP_PARSER`` for the test: the default of every Limits and configuration."""
    monkeypatch.setenv("OCSI_HTTP_PARSER", request.param)
    return str(request.param)


class Server:
    """A running ConnectionManager; ``records`` collects the access records."""

    def __init__(self, app: Callable[..., Any], limits: Limits, loop_name: str = "asyncio",
                 ssl_context: Any = None) -> None:
        self.records: list[Any] = []
        self.manager = ConnectionManager(app, limits, self.records.append)
        self.loop = uvloop.new_event_loop() if loop_name == "uvloop" else asyncio.new_event_loop()
        self.secure = ssl_context is not None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self.call(self.loop.create_server(
            self.manager.protocol_factory(self.port, self.secure), sock=sock, ssl=ssl_context))

    def call(self, coro: Any, timeout: float = TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function on the loop's thread."""
        async def wrapper() -> Any:
            return fn()
        return self.call(wrapper())

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.manager.shutdown(0.5)
        try:
            self.call(close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    def connect(self, timeout: float = TIMEOUT) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def wait_records(self, n: int, timeout: float = TIMEOUT) -> list[Any]:
        """Access records are written after the response: wait until ``n`` are there."""
        import time

        end = time.monotonic() + timeout
        while len(self.records) < n and time.monotonic() < end:
            time.sleep(0.01)
        return list(self.records)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(app, limits=None, loop="asyncio", ssl=None)`` → a started :class:`Server`."""
    servers: list[Server] = []

    def start(app: Callable[..., Any], limits: Limits | None = None, loop: str = "asyncio",
              ssl: Any = None) -> Server:
        srv = Server(app, limits or Limits(), loop, ssl)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


# -- a small blocking HTTP/1.x response reader --------------------------------------------------
class Resp:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
                 raw_head: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"<Resp {self.status} {self.headers} {self.body[:60]!r}>"


class Reader:
    """Reads responses from a socket, one after the other (pipelining-friendly)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.closed = False

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 20)
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed; buffered {self.buf[:200]!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed inside a body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def interim(self) -> Resp:
        """Read a head only (for ``100 Continue``)."""
        return self.response(head_only=True)

    def response(self, head_request: bool = False, head_only: bool = False) -> Resp:
        status_line = self._line()
        raw = [status_line]
        version, status, reason = status_line.decode("latin-1").split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = []
        while True:
            line = self._line()
            raw.append(line)
            if not line:
                break
            n, v = line.decode("latin-1").split(":", 1)
            headers.append((n, v.strip()))
        resp = Resp(int(status), reason, headers, b"", b"\r\n".join(raw))
        code = int(status)
        if head_only or head_request or code < 200 or code in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None:
            assert te == "chunked"
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                parts.append(self._exact(size))
                assert self._exact(2) == b"\r\n"
            resp.body = b"".join(parts)
        elif cl is not None:
            resp.body = self._exact(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def at_eof(self, timeout: float = 2.0) -> bool:
        """Whether the server closes the connection (nothing more arrives) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True


def exchange(srv: Server, data: bytes, n: int = 1, head_request: bool = False) -> list[Resp]:
    """Send raw bytes on a new connection, read ``n`` responses."""
    with srv.connect() as s:
        s.sendall(data)
        r = Reader(s)
        return [r.response(head_request=head_request) for _ in range(n)]


@pytest.fixture
def http() -> Any:
    """Helpers: ``http.Reader``, ``http.exchange``."""
    class H:
        pass

    h = H()
    h.Reader = Reader  # type: ignore[attr-defined]
    h.exchange = exchange  # type: ignore[attr-defined]
    return h
