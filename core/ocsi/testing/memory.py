"""A configuration served in memory: the real server path with the socket replaced.

:class:`MemoryServer` builds and provisions a runtime from the same document an
``ocsi_server`` would run, and drives each request through the real connection protocol
(:class:`ocsi._http.protocol.HTTPProtocol`: h11's parsing, the head checks, limits, the
pipeline, response framing, HEAD, the access record) over an in-memory transport. Only the
kernel is left out, so a test can pretend to be any client address, over TLS or not, and the
answers are those a socket would carry (:class:`~ocsi.testing.servers.Result`). Files are sent
by reads instead of ``sendfile``; that is the one path the socket run alone covers.

The calls are synchronous and run the server's own event loop: use it from ordinary test
functions, not from inside a running loop.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import h11

from .servers import Client, Result, ShutdownError, document

if TYPE_CHECKING:
    from .._pipeline.engine import Host

__all__ = ["MemoryServer", "MemoryTransport"]

T = TypeVar("T")

#: The listening port requests pretend to arrive on (``Request.port``; ``{port}`` in the XML).
MEMORY_PORT = 8080


class MemoryTransport(asyncio.Transport):
    """What :class:`~ocsi._http.protocol.HTTPProtocol` writes to, kept in a buffer."""

    def __init__(self, protocol: asyncio.Protocol, peer: tuple[str, int], port: int) -> None:
        super().__init__()
        self._protocol = protocol
        self._extra = {"peername": peer, "sockname": ("127.0.0.1", port)}
        self.out = bytearray()
        self.closed = False
        self.eof_written = False
        self.reading = True
        self.changed = asyncio.Event()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:
            self.out += data
            self.changed.set()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.changed.set()
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True
        self.changed.set()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        self.changed.set()

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    async def wait_change(self, deadline: float) -> None:
        """Until something is written, closed or resumed; TimeoutError past ``deadline``."""
        loop = asyncio.get_running_loop()
        self.changed.clear()
        await asyncio.wait_for(self.changed.wait(), max(0.0, deadline - loop.time()))


def request_bytes(method: str, target: str, headers: list[tuple[str, str]], body: bytes | None,
                  version: str) -> bytes:
    """The request as a client writes it (framed by ``Content-Length``, as http.client does)."""
    if body is not None or method in ("POST", "PUT", "PATCH"):
        if not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers):
            headers = [*headers, ("Content-Length", str(len(body or b"")))]
    lines = [f"{method} {target} HTTP/{version}"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class MemoryServer(Client):
    """A runtime built from ``xml`` and served without sockets (see the module docstring)."""

    mode = "memory"

    def __init__(self, xml: str | Sequence[Host], tmp: Path, full: bool = False,
                 port: int = MEMORY_PORT, client: str = "127.0.0.1",
                 default_host: str | None = None) -> None:
        """``xml`` as for ``ocsi_server``, or hosts built in Python (:func:`ocsi.embed.host`).

        ``default_host`` is the ``Host`` header of requests that name none (by default
        ``127.0.0.1:PORT``, as a client of the socket server sends).
        """
        from .._extensions.loader import new_plugin_manager
        from .._http.connection import ConnectionManager
        from ..runtime import Runtime, build_runtime

        self.tmp = tmp
        self.port = port
        self.client = client
        self.full = full
        self.default_host = default_host or f"127.0.0.1:{port}"
        self.logdir = str(tmp / "log")
        self.config_path = str(tmp / "ocsi.conf")
        #: Every access record, in the order responses were finished.
        self.records: list[Any] = []
        self.loop = asyncio.new_event_loop()
        self.pm = new_plugin_manager()
        try:
            if isinstance(xml, str):
                Path(self.config_path).write_text(document(xml, tmp, port, full))
                self.runtime = self._run(build_runtime(self.pm, self.config_path))
            else:
                self.runtime = Runtime.from_hosts(xml, self.pm)
                self._run(self.runtime.provision())
        except BaseException:
            self.loop.close()
            raise
        self._observers = self.runtime.extensions.functions("ocsi_request_finished")
        self.manager = ConnectionManager(self.runtime.respond, self.runtime.settings.limits(),
                                         self._access)
        self.manager.use_sendfile = False
        self._closed = False

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def _access(self, record: Any) -> None:
        self.records.append(record)
        if record.request is not None:
            for fn in self._observers:
                fn(request=record.request, status=record.status, sent=record.bytes_sent,
                   duration=record.duration)

    # -- requests --------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 10.0,
                host: str | None = None, *, client: str | None = None, secure: bool = False,
                version: str = "1.1") -> Result:
        """One request on a new connection. Beyond the socket client's arguments: the client
        address, a TLS connection (``secure``) and the HTTP version (``1.0``)."""
        given = list((headers or {}).items())
        names = {n.lower() for n, _ in given}
        items: list[tuple[str, str]] = []
        if "host" not in names:
            items.append(("Host", host if host is not None else self.default_host))
        elif host is not None:
            given = [(n, v) for n, v in given if n.lower() != "host"] + [("Host", host)]
        if "accept-encoding" not in names:
            items.append(("Accept-Encoding", "identity"))
        data = request_bytes(method, path, items + given, body, version)
        return self._run(self._exchange(data, method, client or self.client, secure, timeout))

    def raw(self, data: bytes, timeout: float = 3.0, half_close: bool = False, *,
            client: str | None = None, secure: bool = False) -> bytes:
        """Send ``data`` as is; every byte written until the server closes the connection or
        waits for another request (or ``timeout``)."""
        return self._run(self._raw(data, timeout, half_close, client or self.client, secure))

    def _connect(self, client: str, secure: bool) -> tuple[Any, MemoryTransport]:
        proto = self.manager.protocol_factory(self.port, secure)()
        transport = MemoryTransport(proto, (client, 50000), self.port)
        proto.connection_made(transport)
        return proto, transport

    @staticmethod
    async def _feed(proto: Any, transport: MemoryTransport, data: bytes, deadline: float) -> None:
        """Hand ``data`` over as a socket would, waiting while the server pauses reading."""
        view = memoryview(data)
        while view and not transport.closed:
            if not transport.reading:
                await transport.wait_change(deadline)
                continue
            chunk, view = view[:65536], view[65536:]
            proto.data_received(bytes(chunk))
            await asyncio.sleep(0)

    async def _exchange(self, data: bytes, method: str, client: str, secure: bool,
                        timeout: float) -> Result:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        proto, transport = self._connect(client, secure)
        # An h11 client that "sent" the same method parses the answer (HEAD has no body…).
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        parser.send(h11.EndOfMessage())
        feeder = loop.create_task(self._feed(proto, transport, data, deadline))
        status, reason, chunked = 0, "", False
        message = http.client.HTTPMessage()
        body = bytearray()
        try:
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    if transport.out:
                        parser.receive_data(bytes(transport.out))
                        transport.out.clear()
                    elif transport.closed or transport.eof_written:
                        parser.receive_data(b"")
                    else:
                        await transport.wait_change(deadline)
                    continue
                if isinstance(event, h11.Response):
                    status, reason = event.status_code, event.reason.decode("latin-1")
                    for name, value in event.headers.raw_items():
                        message[name.decode("latin-1")] = value.decode("latin-1")
                        if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                            chunked = True
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise http.client.RemoteDisconnected("the server closed without answering")
        except h11.RemoteProtocolError as exc:
            raise http.client.HTTPException(f"the server's answer is not HTTP: {exc}") from exc
        finally:
            feeder.cancel()
            await self._hang_up(proto, transport)
        return Result(status, message, bytes(body), reason, chunked)

    async def _raw(self, data: bytes, timeout: float, half_close: bool, client: str,
                   secure: bool) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        proto, transport = self._connect(client, secure)
        out = bytearray()
        try:
            await self._feed(proto, transport, data, deadline)
            if half_close and not transport.closed:
                proto.eof_received()
            while loop.time() < deadline:
                await asyncio.sleep(0)
                out += transport.out
                transport.out.clear()
                if transport.closed or transport.eof_written or proto.awaiting_request:
                    break
                try:
                    await transport.wait_change(min(deadline, loop.time() + 0.05))
                except (asyncio.TimeoutError, TimeoutError):
                    pass
            out += transport.out
        finally:
            await self._hang_up(proto, transport)
        return bytes(out)

    async def _hang_up(self, proto: Any, transport: MemoryTransport) -> None:
        """The client closes; returns once the server is done with the connection."""
        if not transport.closed:
            transport.closed = True
            proto.connection_lost(None)
        await self.manager.wait_idle()

    # -- configuration -----------------------------------------------------------------------------
    def reload(self, xml: str) -> None:
        """Serve a new configuration (built and provisioned first; the old one is retired)."""
        from ..runtime import build_runtime

        Path(self.config_path).write_text(document(xml, self.tmp, self.port, self.full))
        new = self._run(build_runtime(self.pm, self.config_path))
        old, self.runtime = self.runtime, new
        self.manager.app = new.respond
        self.manager.limits = new.settings.limits()
        self._observers = new.extensions.functions("ocsi_request_finished")
        self._run(old.retire())
        self._check_cleanup(old)

    def clear_caches(self) -> None:
        """What the ``clearcache`` pipe command does."""
        self.runtime.extensions.hook.ocsi_clear_caches()

    def command(self, line: str) -> None:
        raise NotImplementedError("pipe commands need a real server: use ocsi_server")

    def stop(self) -> None:
        """Close connections and clean the runtime up; :class:`ShutdownError` if that fails."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self.manager.shutdown(5.0))
            self._run(self.runtime.cleanup())
        finally:
            self.loop.close()
        self._check_cleanup(self.runtime)

    @staticmethod
    def _check_cleanup(runtime: Any) -> None:
        if runtime.cleanup_errors:
            raise ShutdownError(f"cleaning the configuration up failed: {runtime.cleanup_errors!r}")
