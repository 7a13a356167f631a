"""The test kit for ocsi and its extensions (registered as the ``ocsi`` pytest plugin).

Fixtures, each a function ``start(xml, **options)`` that returns a running server; ``xml`` is
the content of ``<server>`` (``<port>``, ``<logdir>`` and ``<commandpipe>`` are added) or a
whole document with ``full=True``; ``{tmp}`` and ``{port}`` are replaced in both. Every server
a test started is stopped when it ends, and one that does not stop cleanly fails the test.

- ``ocsi_memory``: :class:`MemoryServer`, the real request path without sockets (any client
  address, TLS or not, HTTP/1.0).
- ``ocsi_server``: :class:`RunningServer`, a real server on 127.0.0.1 in a thread.
- ``ocsi_process``: :class:`ServerProcess`, ``python -m ocsi`` as a subprocess.
- ``ocsi_command``: :class:`CommandProcess`, ``python -m ocsi ARGS…`` (a one-line command:
  ``ocsi_command(["serve", DIR, "--port", "{port}"])``), started on a free port.
- ``ocsi_client``: parametrised, so the test runs twice: ``[memory]`` and ``[socket]``. The
  servers share :class:`Client`'s calls (``get``, ``head``, ``request``, ``raw``) and
  return the same :class:`Result`; ``srv.mode`` tells which one runs.

- :data:`CONTENT`: ``<extension module="ocsi.testing.content"/>``, pages for tests
  (``<page>``, ``<echo/>``, ``<fail>``, the filter ``<mark>``; :mod:`ocsi.testing.content`).
- :func:`preamble_fixtures`: ``serve`` and ``memory`` fixtures for a conftest, every server's
  configuration beginning with the extension's own lines.

For configuration errors: :func:`assert_config_error` (the message, and the line counted in
the XML the test wrote). For unit tests below the connection: :func:`make_request`, :func:`build_pipeline`; of one
element parser: :func:`parse_element`, :func:`parse_context`, :func:`load_context`; for
registration tests: :func:`write_extension` (a distribution in a directory for ``<findlib>``);
for TLS: :func:`self_signed`, :func:`authority_and_certificate` (a test CA and a certificate);
for HTTP/3: :class:`H3Client` (with aioquic, ``ocsi[http3]``).
Responses read off a raw socket exactly as written (a hand-made or pipelined request):
:class:`RawReader`, :class:`RawResponse`, :func:`raw_exchange`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..certificates import authority_and_certificate, self_signed
from .distributions import write_extension
from .errors import FIRST_LINE, assert_config_error
from .memory import MEMORY_PORT, MemoryServer
from .parsing import load_context, parse_context, parse_element
from .requests import build_pipeline, make_request
from .servers import (Client, CommandProcess, Result, RunningServer, ServerProcess, ShutdownError, decode_content, document,
                      free_port, wait_for_port)
from .h2client import H2Client
from .content import CONTENT
from .preamble import preamble_fixtures
from .rawhttp import RawReader, RawResponse, raw_exchange
from .websocket import WebSocketClient

__all__ = [
    "FIRST_LINE", "assert_config_error", "MEMORY_PORT", "authority_and_certificate", "self_signed", "Client", "MemoryServer", "Result", "RunningServer", "ServerProcess",
    "ShutdownError", "build_pipeline", "decode_content", "document", "free_port", "load_context",
    "make_request", "parse_context", "parse_element", "wait_for_port", "write_extension",
    "WebSocketClient", "H2Client", "H3Client", "H3Response", "RawReader", "RawResponse",
    "raw_exchange", "preamble_fixtures", "CONTENT",
    "CommandProcess", "ocsi_client", "ocsi_command", "ocsi_memory", "ocsi_process", "ocsi_server",
]


def __getattr__(name: str) -> Any:
    """``H3Client`` and ``H3Response`` need aioquic (``ocsi[http3]``): imported when asked for."""
    if name in ("H3Client", "H3Response"):
        from . import h3client

        return getattr(h3client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


RunningServer.mode = "socket"  # type: ignore[attr-defined]  # a class attribute for ocsi_client's tests
ServerProcess.mode = "process"  # type: ignore[attr-defined]  # a class attribute for ocsi_client's tests
CommandProcess.mode = "process"  # type: ignore[attr-defined]  # a class attribute for ocsi_client's tests


class _Servers:
    """The servers one fixture started, each in its own directory, all stopped at the end."""

    def __init__(self, tmp_path: Path, prefix: str, factory: Callable[..., Any],
                 finish: Callable[[Any], None]) -> None:
        self.tmp_path = tmp_path
        self.prefix = prefix
        self.factory = factory
        self.finish = finish
        self.started: list[Any] = []
        self._count = 0

    def start(self, xml: str, **options: Any) -> Any:
        d = self.tmp_path / f"{self.prefix}{self._count}"
        self._count += 1  # also when the server fails to start: the next one gets a new directory
        d.mkdir()
        server = self.factory(xml, d, **options)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        errors = []
        for server in self.started:
            try:
                self.finish(server)
            except Exception as exc:  # noqa: BLE001 - stop the others, then fail
                errors.append(exc)
        if errors:
            raise errors[0]


def _servers(tmp_path: Path, prefix: str, factory: Callable[..., Any],
             finish: Callable[[Any], None]) -> Iterator[Callable[..., Any]]:
    servers = _Servers(tmp_path, prefix, factory, finish)
    yield servers.start
    servers.stop_all()


@pytest.fixture
def ocsi_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """``ocsi_server(xml, full=False, verbosity=0, watch=False)`` -> :class:`RunningServer`."""
    yield from _servers(tmp_path, "srv", RunningServer, RunningServer.stop)


@pytest.fixture
def ocsi_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``ocsi_process(xml, full=False, args=None, env=None)`` -> :class:`ServerProcess`."""
    yield from _servers(tmp_path, "proc", ServerProcess, ServerProcess.finish)


@pytest.fixture
def ocsi_command(tmp_path: Path) -> Iterator[Callable[..., CommandProcess]]:
    """``ocsi_command(args, env=None, cwd=None)`` -> :class:`CommandProcess` (``{port}`` in
    ``args``: a free port)."""
    def start(args: list[str], d: Path, **options: Any) -> CommandProcess:
        return CommandProcess(args, d, **options)

    yield from _servers(tmp_path, "cmd", start, ServerProcess.finish)


@pytest.fixture
def ocsi_memory(tmp_path: Path) -> Iterator[Callable[..., MemoryServer]]:
    """``ocsi_memory(xml, full=False, port=8080, client="127.0.0.1")`` -> :class:`MemoryServer`."""
    yield from _servers(tmp_path, "mem", MemoryServer, MemoryServer.stop)


@pytest.fixture(params=["memory", "socket"])
def ocsi_client(request: pytest.FixtureRequest) -> Callable[..., MemoryServer | RunningServer]:
    """``ocsi_client(xml, full=False)``: the test runs once in memory and once over sockets."""
    name = "ocsi_memory" if request.param == "memory" else "ocsi_server"
    start: Callable[..., MemoryServer | RunningServer] = request.getfixturevalue(name)
    return start
