"""Responses read off a raw socket, byte by byte as the server wrote them.

For tests that write a request by hand (a malformed head, a pipelined burst, a body sent in
pieces) and need to see each response exactly: its status line, the header fields in their
order and spelling, the framing. :class:`RawReader` reads one response after the other from a
connected socket (pipelining included); :func:`raw_exchange` sends bytes on a new connection
and reads ``n`` responses. :meth:`Client.raw <ocsi.testing.Client.raw>` is the simpler form:
every byte until the server closes.
"""

from __future__ import annotations

import socket

__all__ = ["RawReader", "RawResponse", "raw_exchange"]

#: How long a read waits by default, in seconds.
TIMEOUT = 5.0


class RawResponse:
    """One response: ``status``, ``reason``, ``headers`` (name, value) as sent, ``body``
    (de-chunked), and ``raw_head`` (the head's bytes without the final empty line)."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
                 raw_head: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def header(self, name: str) -> str | None:
        """The first field called ``name`` (any case), or None."""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def all(self, name: str) -> list[str]:
        """Every field called ``name`` (any case), in order."""
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.headers} {self.body[:60]!r}>"


class RawReader:
    """Reads HTTP/1.1 responses from ``sock``, one after the other; what arrives after a
    response stays buffered for the next (``buf``). ``closed``: the server closed."""

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

    def interim(self) -> RawResponse:
        """Read a head only (``100 Continue``)."""
        return self.response(head_only=True)

    def response(self, head_request: bool = False, head_only: bool = False) -> RawResponse:
        """The next response; ``head_request``: it answers a HEAD (no body follows)."""
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
        resp = RawResponse(int(status), reason, headers, b"", b"\r\n".join(raw))
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


def raw_exchange(port: int, data: bytes, n: int = 1, head_request: bool = False,
                 host: str = "127.0.0.1", timeout: float = TIMEOUT) -> list[RawResponse]:
    """Send ``data`` as is on a new connection to ``host:port`` and read ``n`` responses."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        r = RawReader(s)
        return [r.response(head_request=head_request) for _ in range(n)]
