"""pytest fixtures for ocsi and for extension authors (registered as the ``ocsi`` pytest plugin).

``ocsi_server(xml)`` starts a real server on 127.0.0.1 (an ephemeral port) in a background
thread of the test process; ``ocsi_process(xml)`` starts ``python -m ocsi`` as a subprocess.
Both give the URL, the command pipe, the log directory and small HTTP helpers. ``xml`` is the
content of ``<server>`` (the fixture adds ``<port>``, ``<logdir>`` and ``<commandpipe>``), or a
whole document with ``full=True``, where ``{port}`` is replaced by a free port.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Result", "RunningServer", "ServerProcess", "free_port", "ocsi_process", "ocsi_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    status: int
    headers: Message
    body: bytes
    reason: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Client:
    """HTTP helpers shared by the in-process and subprocess servers."""

    host = "127.0.0.1"
    port: int
    pipe: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> Result:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            return Result(resp.status, resp.msg, data, resp.reason)
        finally:
            conn.close()

    def get(self, path: str, headers: Mapping[str, str] | None = None, **kw: Any) -> Result:
        return self.request("GET", path, headers=headers, **kw)

    def head(self, path: str, headers: Mapping[str, str] | None = None, **kw: Any) -> Result:
        return self.request("HEAD", path, headers=headers, **kw)

    def raw(self, data: bytes, timeout: float = 3.0, half_close: bool = False) -> bytes:
        """Send ``data`` as is and return every byte read until the server closes (or timeout)."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    def write_pipe(self, line: str) -> None:
        fd = os.open(self.pipe, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)


def _document(xml: str, tmp: Path, port: int | str, full: bool) -> str:
    xml = xml.replace("{tmp}", str(tmp))
    if full:
        return xml.replace("{port}", str(port))
    return (f"<ocsigen><server>\n<port>127.0.0.1:{port}</port>\n<logdir>{tmp}/log</logdir>\n"
            f"<commandpipe>{tmp}/ocsi.cmd</commandpipe>\n{xml}\n</server></ocsigen>\n")


class RunningServer(_Client):
    """A :class:`ocsi.server.Server` running on its own event loop in a daemon thread."""

    def __init__(self, xml: str, tmp: Path, full: bool = False, verbosity: int = 0,
                 watch: bool = False) -> None:
        from .server import Server

        self.tmp = tmp
        self.logdir = str(tmp / "log")
        os.makedirs(self.logdir, exist_ok=True)
        self.config_path = str(tmp / "ocsi.conf")
        port: int | str = free_port() if full else 0
        Path(self.config_path).write_text(_document(xml, tmp, port, full))
        self.full = full
        self.server = Server(self.config_path, silent=True, verbosity=verbosity,
                             install_signals=False, watch=watch)
        self.loop = asyncio.new_event_loop()
        self._error: BaseException | None = None
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.server.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                self._error = exc
                started.set()
                return
            started.set()
            self.loop.run_until_complete(self.server.wait_stopped())

        self.thread = threading.Thread(target=run, name="ocsi-test-server", daemon=True)
        self.thread.start()
        if not started.wait(30):
            raise RuntimeError("ocsi test server did not start within 30 s")
        if self._error is not None:
            raise self._error
        self.port = self.server.ports[0]
        self.pipe = self.server.pipe.path if self.server.pipe else str(tmp / "ocsi.cmd")

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run a coroutine function on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout)

    def command(self, line: str, timeout: float = 30.0) -> None:
        """Write ``line`` to the command pipe and wait until the server has processed it."""
        before = self.server.commands.processed
        self.write_pipe(line)
        deadline = time.monotonic() + timeout
        while self.server.commands.processed <= before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"command {line!r} not processed within {timeout} s")
            time.sleep(0.01)

    def reload(self, xml: str) -> None:
        Path(self.config_path).write_text(
            _document(xml, self.tmp, self.port, self.full))
        self.command("reload")

    def log(self, name: str = "access") -> str:
        if self.server.logs is not None:
            self.server.logs.access.flush()
        path = os.path.join(self.logdir, f"{name}.log")
        return Path(path).read_text() if os.path.exists(path) else ""

    def wait_log(self, name: str = "access", contains: str = "", lines: int = 1,
                 timeout: float = 5.0) -> str:
        """The log's text once it has ``lines`` lines and contains ``contains`` (or timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log(name)
            if (text.count("\n") >= lines and contains in text) or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        if self.thread.is_alive():
            try:
                self.call(lambda: self.server.shutdown(timeout), timeout + 10)
            except Exception:  # noqa: BLE001
                pass
            self.thread.join(timeout + 10)
        if not self.loop.is_closed() and not self.thread.is_alive():
            self.loop.close()


class ServerProcess(_Client):
    """``python -m ocsi -c FILE`` as a subprocess."""

    def __init__(self, xml: str, tmp: Path, full: bool = False, args: list[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.tmp = tmp
        self.logdir = str(tmp / "log")
        os.makedirs(self.logdir, exist_ok=True)
        self.port = free_port()
        self.config_path = str(tmp / "ocsi.conf")
        Path(self.config_path).write_text(_document(xml, tmp, self.port, full))
        self.pipe = str(tmp / "ocsi.cmd")
        self.stdout_path = tmp / "stdout.txt"
        self.stderr_path = tmp / "stderr.txt"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ocsi", "-c", self.config_path, *(args or [])],
            stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"),  # noqa: SIM115
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ocsi exited with {self.proc.returncode}: "
                                   f"{self.stderr_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("ocsi did not start listening within 30 s") from None
                time.sleep(0.05)

    def command(self, line: str) -> None:
        self.write_pipe(line)

    def log(self, name: str = "access") -> str:
        path = os.path.join(self.logdir, f"{name}.log")
        return Path(path).read_text() if os.path.exists(path) else ""

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _starter(tmp_path: Path, prefix: str, factory: Callable[..., Any]
             ) -> tuple[Callable[..., Any], list[Any]]:
    """A ``start(xml, **options)`` function giving each server its own directory."""
    started: list[Any] = []

    def start(xml: str, **options: Any) -> Any:
        d = tmp_path / f"{prefix}{len(started)}"
        d.mkdir()
        server = factory(xml, d, **options)
        started.append(server)
        return server

    return start, started


@pytest.fixture
def ocsi_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """``ocsi_server(xml, full=False, verbosity=0, watch=False)`` -> :class:`RunningServer`."""
    start, started = _starter(tmp_path, "srv", RunningServer)
    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def ocsi_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``ocsi_process(xml, full=False, args=None, env=None)`` -> :class:`ServerProcess`."""
    start, started = _starter(tmp_path, "proc", ServerProcess)
    yield start
    for proc in started:
        proc.stop()


def make_request(method: str = "GET", target: str = "/", *, host: str | None = "localhost",
                 headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
                 body: bytes = b"", port: int = 80, secure: bool = False,
                 client: str = "127.0.0.1", version: str = "1.1") -> Any:
    """A :class:`ocsi.Request` built in memory, for driving a pipeline without sockets."""
    from .http.headers import Headers
    from .http.request import Request, RequestBody
    from .http.urlpath import decode_path, split_target

    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    if host is not None and not any(n.lower() == "host" for n, _ in items):
        items.insert(0, ("host", host))
    raw_path, query, _, _ = split_target(target)
    raw, segs = decode_path(raw_path)
    rb = RequestBody(len(body), None)
    if body:
        rb.feed(body)
    rb.end()
    h = Headers(items)
    host_header = h.get("host")
    name = host_header.rsplit(":", 1)[0].lower() if host_header and not host_header.startswith("[") \
        else (host_header.lower() if host_header else None)
    return Request(method, target, raw_path, query, version, h, name, port, secure, client, rb,
                   raw, segs, host_header=host_header)


def build_pipeline(xml: str, findlib: list[str] | None = None) -> Any:
    """Parse ``<server>`` children into a :class:`ocsi.pipeline.engine.Pipeline` (no sockets)."""
    from .extensions.loader import new_plugin_manager
    from .runtime import Runtime, build_configuration

    paths = "".join(f'<findlib path="{p}"/>' for p in findlib or [])
    data = f"<ocsigen><server><port>0</port>{paths}{xml}</server></ocsigen>".encode()
    pm = new_plugin_manager()
    return Runtime(build_configuration(pm, "<test>", data), pm).pipeline
