"""Real-socket harness for the connection layer: a ConnectionManager served on 127.0.0.1 from an
event loop running in a background thread, and small blocking HTTP client helpers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ocsi._http.connection import ConnectionManager
from ocsi._http.limits import Limits
from ocsi.testing import RawReader, RawResponse, raw_exchange

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

from ocsi._http import fasthead

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


# -- raw-socket responses: ocsi.testing's reader -------------------------------------------------
def exchange(srv: Server, data: bytes, n: int = 1, head_request: bool = False) -> list[RawResponse]:
    """Send raw bytes on a new connection, read ``n`` responses."""
    return raw_exchange(srv.port, data, n, head_request)


class _Helpers:
    """``http.Reader`` (:class:`~ocsi.testing.RawReader`) and ``http.exchange``."""

    Reader = RawReader
    exchange = staticmethod(exchange)


@pytest.fixture
def http() -> _Helpers:
    """Helpers: ``http.Reader``, ``http.exchange``."""
    return _Helpers()
