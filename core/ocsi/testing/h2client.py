"""A blocking HTTP/2 client over TLS (ALPN ``h2``) for tests, frames by the ``h2`` library:
several requests on one connection, bodies in frames of the default size, the client's
initial window optionally small (to exercise the server's flow control)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence

import h2.config
import h2.connection
import h2.events
import h2.settings


class H2Client:
    """``H2Client(port)``; ``request(path, method, body)`` returns the stream id, and
    ``responses(n)`` reads until ``n`` streams ended: ``{stream: (head, body)}``."""

    def __init__(self, port: int, window: int | None = None, tls: bool = True,
                 strict: bool = True) -> None:
        """``tls=False``: cleartext HTTP/2 with prior knowledge (an h2c port). ``strict=False``:
        fields are sent exactly as given, unchecked by h2 (to see what a server refuses)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            tls_sock = ctx.wrap_socket(sock, server_hostname="localhost")
            assert tls_sock.selected_alpn_protocol() == "h2"
            sock = tls_sock
        self.sock: socket.socket = sock
        self.scheme = "https" if tls else "http"
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=strict, normalize_outbound_headers=strict))
        self.h2.initiate_connection()
        if window is not None:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.h2.data_to_send())

    def request(self, path: str | bytes, method: str | bytes = "GET", body: bytes = b"",
                headers: Sequence[tuple[str | bytes, str | bytes]] = (),
                authority: str | bytes = "localhost") -> int:
        """Send one request; ``headers`` follow the pseudo-headers (str is sent as UTF-8)."""
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, [(":method", method), (":path", path), (":scheme", self.scheme),
                                   (":authority", authority), *headers], end_stream=not body)
        for at in range(0, len(body), 16384):  # frames of the default maximum size
            self.h2.send_data(sid, body[at:at + 16384], end_stream=at + 16384 >= len(body))
        self.flush()
        return sid

    def responses(self, count: int) -> dict[int, tuple[dict[bytes, bytes], bytes]]:
        heads: dict[int, dict[bytes, bytes]] = {}
        bodies: dict[int, bytes] = {}
        ended: set[int] = set()
        while len(ended) < count:
            data = self.sock.recv(65536)
            if not data:
                break
            for ev in self.h2.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    heads[ev.stream_id] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended.add(ev.stream_id)
            self.flush()
        return {sid: (heads[sid], bodies.get(sid, b"")) for sid in ended}

    def read_until_closed(self) -> bytes:
        """Every byte the server sends until it closes the connection (not parsed)."""
        data = b""
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except (ssl.SSLError, ConnectionError):
            pass
        return data

    def until_closed(self) -> list[h2.events.Event]:
        """Read until the server closes the connection; the events of what it sent last."""
        return list(self.h2.receive_data(self.read_until_closed()))
