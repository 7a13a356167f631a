"""An HTTP/3 client for tests, built on aioquic (``ocsi[http3]``).

:class:`H3Client` keeps one QUIC connection, driven by an event loop in a thread of its own, so
that tests stay synchronous::

    with H3Client(port, server_name="localhost", cafile=ca) as c:
        r = c.get("/")                        # an H3Response: status, headers, body
        a, b = c.gather([c.fetch("/a"), c.fetch("/b")])   # concurrent streams

``fetch`` (a coroutine, for ``gather`` or ``call``) takes a body as bytes or as an iterable of
chunks (sent one by one, waiting ``pause`` seconds between them: a streamed upload);
``reset_after`` resets the stream once that many body bytes have arrived.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset

__all__ = ["H3Client", "H3Response"]

T = TypeVar("T")


@dataclass
class H3Response:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: The server reset the stream (its error code), or the connection ended before the end.
    reset: int | None = None

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name.lower()), None)


class _Pending:
    def __init__(self, loop: asyncio.AbstractEventLoop, reset_after: int | None) -> None:
        self.response = H3Response()
        self.done: asyncio.Future[H3Response] = loop.create_future()
        self.reset_after = reset_after

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(self.response)


class _Protocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.h3 = H3Connection(self._quic)
        self.pending: dict[int, _Pending] = {}
        #: GOAWAY or the connection's end was seen.
        self.terminated: ConnectionTerminated | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamReset):
            p = self.pending.pop(event.stream_id, None)
            if p is not None:
                p.response.reset = event.error_code
                p.finish()
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event
            for p in self.pending.values():
                if p.response.reset is None:
                    p.response.reset = event.error_code
                p.finish()
            self.pending.clear()
        for h3event in self.h3.handle_event(event):
            self._h3_event(h3event)

    def _h3_event(self, event: H3Event) -> None:
        if not isinstance(event, (HeadersReceived, DataReceived)):
            return
        p = self.pending.get(event.stream_id)
        if p is None:
            return
        if isinstance(event, HeadersReceived):
            for name, value in event.headers:
                if name == b":status":
                    p.response.status = int(value)
                else:
                    p.response.headers.append((name.decode("latin-1"),
                                               value.decode("latin-1")))
        else:
            p.response.body += event.data
            if p.reset_after is not None and len(p.response.body) >= p.reset_after:
                self._quic.reset_stream(event.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
                self._quic.stop_stream(event.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
                self.transmit()
                del self.pending[event.stream_id]
                p.finish()
                return
        if event.stream_ended:
            del self.pending[event.stream_id]
            p.finish()


class H3Client:
    """One HTTP/3 connection to ``127.0.0.1:port`` (a context manager)."""

    def __init__(self, port: int, server_name: str = "localhost", cafile: str | None = None,
                 host: str = "127.0.0.1", timeout: float = 20.0,
                 idle_timeout: float = 60.0) -> None:
        self.port = port
        self.authority = f"{server_name}:{port}"
        self.timeout = timeout
        config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                   server_name=server_name, idle_timeout=idle_timeout)
        if cafile is not None:
            config.load_verify_locations(cafile)
        else:
            config.verify_mode = ssl.CERT_NONE
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="h3-test-client",
                                        daemon=True)
        self._thread.start()
        self._cm = connect(host, port, configuration=config, create_protocol=_Protocol,
                           wait_connected=True)
        try:
            self.protocol: _Protocol = self.call(self._cm.__aenter__())  # type: ignore[assignment]
        except BaseException:  # ConnectionError: the handshake failed or timed out (idle_timeout)
            self._stop_loop()
            raise

    # -- running on the client's loop ------------------------------------------------------------
    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the client's loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout or self.timeout)

    def gather(self, coros: Iterable[Awaitable[T]]) -> list[T]:
        async def all_of() -> list[T]:
            return list(await asyncio.gather(*coros))
        return self.call(all_of())

    # -- requests --------------------------------------------------------------------------------
    async def fetch(self, path: str, method: str = "GET", body: bytes | Iterable[bytes] = b"",
                    headers: Iterable[tuple[str, str]] = (), pause: float = 0.0,
                    reset_after: int | None = None) -> H3Response:
        proto = self.protocol
        sid = proto._quic.get_next_available_stream_id()
        pending = proto.pending[sid] = _Pending(self.loop, reset_after)
        chunks = [body] if isinstance(body, bytes) else list(body)
        chunks = [c for c in chunks if c]
        head = [(b":method", method.encode()), (b":scheme", b"https"),
                (b":authority", self.authority.encode()), (b":path", path.encode()),
                *((n.lower().encode(), v.encode()) for n, v in headers)]
        proto.h3.send_headers(sid, head, end_stream=not chunks)
        proto.transmit()
        for i, chunk in enumerate(chunks):
            if pause and i:
                await asyncio.sleep(pause)
            proto.h3.send_data(sid, chunk, end_stream=i == len(chunks) - 1)
            proto.transmit()
        return await pending.done

    def request(self, path: str, method: str = "GET", body: bytes | Iterable[bytes] = b"",
                headers: Iterable[tuple[str, str]] = (), **kw: Any) -> H3Response:
        return self.call(self.fetch(path, method, body, headers, **kw))

    def get(self, path: str, headers: Iterable[tuple[str, str]] = ()) -> H3Response:
        return self.request(path, headers=headers)

    def wait_terminated(self, timeout: float = 20.0) -> ConnectionTerminated | None:
        """Wait until the server has closed the connection; its close event."""
        async def wait() -> ConnectionTerminated | None:
            await self.protocol.wait_closed()
            return self.protocol.terminated
        return self.call(wait(), timeout)

    @property
    def peer_certificate(self) -> Any:
        """The certificate the server presented (a ``cryptography`` certificate)."""
        return self.protocol._quic.tls._peer_certificate

    # -- the end ---------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.call(self._cm.__aexit__(None, None, None), 10)
        except Exception:  # noqa: BLE001 - closing a connection the server ended
            pass
        self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> H3Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
