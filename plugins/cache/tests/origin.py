"""A real origin for the cache tests: ``http.server`` on 127.0.0.1 (an ephemeral port) in a
thread, answering what each test scripts per path and counting the requests it gets.

``origin.route("/a", status=200, headers={...}, body=b"...")`` sets an answer;
``handler=`` a function of the request (method, path, headers) returning
``(status, headers, body)``; ``delay=`` seconds before answering; ``stream=(n, chunk)`` sends
``n`` bytes in pieces of ``chunk`` (chunked, generated as they go, never held);
``origin.hits("/a")`` counts the requests for a path, ``origin.seen`` keeps their heads.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    handler: Handler | None = None
    stream: tuple[int, int] | None = None
    #: announce ``len(body)`` bytes, send half of them, then close the connection
    truncate: bool = False


class Origin:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.counts: dict[str, int] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.connections: set[Any] = set()
        origin = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with origin.lock:
                    origin.connections.add(self.connection)

            def do_GET(self) -> None:
                origin._answer(self)

            def do_HEAD(self) -> None:
                origin._answer(self)

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                self.rfile.read(n)
                origin._answer(self)

            do_PUT = do_POST
            do_DELETE = do_POST

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, path: str, **kw: Any) -> None:
        self.routes[path] = Route(**kw)

    def hits(self, path: str) -> int:
        with self.lock:
            return self.counts.get(path, 0)

    def _answer(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = h.path
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            self.seen.append((h.command, path, headers))
        route = self.routes.get(path.split("?")[0]) or self.routes.get(path)
        if route is None:
            status, extra, body = 404, {"content-type": "text/plain"}, b"no route"
        elif route.handler is not None:
            status, extra, body = route.handler(h.command, path, headers)
        else:
            status, extra, body = route.status, dict(route.headers), route.body
        if route is not None and route.delay:
            time.sleep(route.delay)
        h.send_response(status)
        for k, v in extra.items():
            h.send_header(k, v)
        if route is not None and route.stream is not None and status == 200:
            total, piece = route.stream
            h.send_header("transfer-encoding", "chunked")
            h.end_headers()
            if h.command == "HEAD":
                return
            block = b"x" * piece
            sent = 0
            while sent < total:
                n = min(piece, total - sent)
                h.wfile.write(b"%x\r\n" % n + block[:n] + b"\r\n")
                sent += n
            h.wfile.write(b"0\r\n\r\n")
            return
        if status not in (204, 304):
            h.send_header("content-length", str(len(body)))
        h.end_headers()
        if route is not None and route.truncate:
            h.wfile.write(body[:len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(__import__("socket").SHUT_RDWR)
            return
        if h.command != "HEAD" and status not in (204, 304):
            h.wfile.write(body)

    def stop(self) -> None:
        """Stop listening and cut the connections still open (a proxy's kept-alive ones)."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for conn in self.connections:
                try:
                    conn.shutdown(__import__("socket").SHUT_RDWR)
                except OSError:
                    pass


HERE = __import__("pathlib").Path(__file__).resolve().parent
EXTS = (f'<findlib path="{HERE}"/><extension findlib-package="ocsi-ext-cache"/>'
        '<extension findlib-package="ocsi-ext-revproxy"/><extension module="cache_helpers"/>')
DATADIR = "<datadir>{tmp}/data</datadir>"


def proxied(origin: Origin, attrs: str = "", datadir: bool = True) -> str:
    """A host with ``<cache attrs/>`` in front of a proxy to ``origin``."""
    return ((DATADIR if datadir else "") + EXTS
            + f'<host><cache {attrs}/><revproxy suburl="(.*)" dest="{origin.url}/\\1"/></host>')


def status_of(result: Any) -> str:
    """The ``Cache-Status`` value, without the cache's name."""
    value = result.headers.get("cache-status") or ""
    return value.split(";", 1)[1].strip() if ";" in value else value


def until(condition: Callable[[], Any], seconds: float = 20.0) -> Any:
    """Poll ``condition`` (bounded) until it holds; its last value."""
    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value
