"""Servers on real sockets for tests: in a thread of the test process, or as a subprocess.

``RunningServer(xml, tmp)`` runs :class:`ocsi.server.Server` on 127.0.0.1 in a background
thread; ``ServerProcess(xml, tmp)`` runs ``python -m ocsi``. Both give the URL, the command
pipe, the log directory and the HTTP helpers of :class:`Client`, which the in-memory
:class:`~ocsi.testing.memory.MemoryServer` shares, so one test body runs either way.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

__all__ = ["Client", "CommandProcess", "Result", "RunningServer", "ServerProcess", "document", "free_port",
           "wait_for_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None,
                  timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    """Until something accepts connections on ``port``; AssertionError when ``process``
    exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the process exited with {process.returncode} before "
                                     f"port {port} opened") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"port {port} not open after {timeout:g} s") from None
            time.sleep(0.05)


@dataclass
class Result:
    """One response, the same whichever client got it (socket or in-memory).

    ``headers`` is an :class:`email.message.Message` (case-insensitive ``get``, ``in``,
    ``get_all`` for repeated fields); ``chunked`` tells a body sent with chunked framing.
    """

    status: int
    headers: Message
    body: bytes
    reason: str = ""
    chunked: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def decoded(self) -> bytes:
        """The body with its ``Content-Encoding`` undone (gzip, deflate, br, zstd)."""
        return decode_content(self.headers.get("content-encoding"), self.body)


def decode_content(coding: str | None, data: bytes) -> bytes:
    """``data`` decoded from ``coding`` (``None`` or ``identity``: as it is)."""
    import gzip
    import zlib

    if coding is None or coding == "identity":
        return data
    if coding in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)  # the zlib format: RFC 9110's "deflate"
    if coding == "br":
        import brotli

        return bytes(brotli.decompress(data))
    if coding == "zstd":
        import zstandard

        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    raise AssertionError(f"unexpected content coding {coding!r}")


class Client:
    """HTTP helpers shared by every test server: a request in, a :class:`Result` out.

    ``host`` sets the ``Host`` header (default ``127.0.0.1:PORT``); like any HTTP client this
    adds ``Accept-Encoding: identity`` unless the test gives its own.
    """

    host = "127.0.0.1"
    port: int
    pipe: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 10.0,
                host: str | None = None) -> Result:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        if host is not None:
            h["Host"] = host
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            chunked = bool(resp.chunked)
            data = resp.read()
            return Result(resp.status, resp.msg, data, resp.reason, chunked)
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


def document(xml: str, tmp: Path, port: int | str, full: bool) -> str:
    """The configuration a test server runs: ``xml`` is the content of ``<server>`` (a
    ``<port>``, ``<logdir>`` and ``<commandpipe>`` in ``tmp`` are added) or, with ``full``, a
    whole document. ``{tmp}`` and ``{port}`` are replaced in both."""
    xml = xml.replace("{tmp}", str(tmp)).replace("{port}", str(port))
    if full:
        return xml
    return (f"<ocsigen><server>\n<port>127.0.0.1:{port}</port>\n<logdir>{tmp}/log</logdir>\n"
            f"<commandpipe>{tmp}/ocsi.cmd</commandpipe>\n{xml}\n</server></ocsigen>\n")


class ShutdownError(AssertionError):
    """A test server did not stop cleanly: the test that ran it fails."""


class RunningServer(Client):
    """A :class:`ocsi.server.Server` running on its own event loop in a daemon thread."""

    def __init__(self, xml: str, tmp: Path, full: bool = False, verbosity: int = 0,
                 watch: bool = False) -> None:
        from ..server import Server

        self.tmp = tmp
        self.logdir = str(tmp / "log")
        os.makedirs(self.logdir, exist_ok=True)
        self.config_path = str(tmp / "ocsi.conf")
        # port 0 (the kernel picks) unless the configuration must name its port itself
        port: int | str = free_port() if full or "{port}" in xml else 0
        Path(self.config_path).write_text(document(xml, tmp, port, full))
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
            document(xml, self.tmp, self.port, self.full))
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
        """Shut the server down; :class:`ShutdownError` when that fails or hangs."""
        failure: BaseException | None = None
        if self.thread.is_alive():
            try:
                self.call(lambda: self.server.shutdown(timeout), timeout + 10)
            except Exception as exc:  # noqa: BLE001 - reported below, after the thread ends
                failure = exc
            self.thread.join(timeout + 10)
        if self.thread.is_alive():
            raise ShutdownError(f"the test server's thread is still running {timeout + 10:g} s "
                                "after shutdown")
        if not self.loop.is_closed():
            self.loop.close()
        if failure is not None:
            raise ShutdownError(f"the test server's shutdown failed: {failure!r}") from failure


class ServerProcess(Client):
    """``python -m ocsi -c FILE`` as a subprocess."""

    def __init__(self, xml: str, tmp: Path, full: bool = False, args: list[str] | None = None,
                 env: Mapping[str, str] | None = None, python: str | None = None) -> None:
        """``python``: the interpreter to run ocsi with (another virtualenv's), default this one."""
        self.tmp = tmp
        self.logdir = str(tmp / "log")
        os.makedirs(self.logdir, exist_ok=True)
        self.port = free_port()
        self.config_path = str(tmp / "ocsi.conf")
        Path(self.config_path).write_text(document(xml, tmp, self.port, full))
        self.pipe = str(tmp / "ocsi.cmd")
        self.observed = False
        self.stdout_path = tmp / "stdout.txt"
        self.stderr_path = tmp / "stderr.txt"
        self.proc = subprocess.Popen(
            [python or sys.executable, "-m", "ocsi", "-c", self.config_path, *(args or [])],
            stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"),  # noqa: SIM115
            env={**os.environ, **(env or {})},
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
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
        # the command pipe is made a moment after the ports listen
        config = getattr(self, "config_path", None)  # a one-line command has no file
        if config and f"<commandpipe>{self.pipe}</commandpipe>" in Path(config).read_text():
            while not os.path.exists(self.pipe) and time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)

    def command(self, line: str) -> None:
        self.write_pipe(line)

    def log(self, name: str = "access") -> str:
        path = os.path.join(self.logdir, f"{name}.log")
        return Path(path).read_text() if os.path.exists(path) else ""

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the process to exit by itself; its exit code (the test has seen it)."""
        code = self.proc.wait(timeout)
        self.observed = True
        return code

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then the exit code (SIGKILL after ``timeout``: the code is then negative)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.observed = True
        return self.proc.returncode

    def finish(self) -> None:
        """The fixture's end: a running server must stop with 0, and one that exited on its
        own must have had its exit code looked at by the test (:meth:`wait`, :meth:`stop`)."""
        running = self.proc.poll() is None
        seen = self.observed
        code = self.stop()
        if running and code != 0:
            raise ShutdownError(f"ocsi exited with {code} on SIGTERM: {self.stderr_tail()}")
        if not running and not seen and code != 0:
            raise ShutdownError(f"ocsi exited with {code} before the test ended, unnoticed: "
                                f"{self.stderr_tail()}")

    def stderr_tail(self, size: int = 2000) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return text[-size:]

    def output(self) -> tuple[str, str]:
        """What it wrote so far: ``(stdout, stderr)``."""
        return (self.stdout_path.read_text(errors="replace"),
                self.stderr_path.read_text(errors="replace"))


class CommandProcess(ServerProcess):
    """``python -m ocsi ARGS…`` as a subprocess (``ocsi serve DIR --port {port}``, ``ocsi proxy
    …``): ``{port}`` in the arguments becomes a free port, on which it must start listening.
    The same helpers as :class:`ServerProcess` (``get``, ``stop``, ``output``…)."""

    def __init__(self, args: list[str], tmp: Path, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.pipe = ""
        self.observed = False
        self.stdout_path = tmp / "stdout.txt"
        self.stderr_path = tmp / "stderr.txt"
        self.args = [a.replace("{port}", str(self.port)) for a in args]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ocsi", *self.args], cwd=cwd,
            stdout=open(self.stdout_path, "wb"), stderr=open(self.stderr_path, "wb"),  # noqa: SIM115
            env={**os.environ, **(env or {})},
        )
        self._wait_listening()


