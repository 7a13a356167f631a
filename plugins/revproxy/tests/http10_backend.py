"""An HTTP/1.0 backend on Python's ``http.server``, as small applications are written: it reads
a request body by its ``Content-Length`` and cannot read a chunked one.

``python http10_backend.py PORT``. ``POST`` answers JSON: the body's length and SHA-256, the
``Content-Length`` and ``Transfer-Encoding`` it was sent with. ``GET /redirect`` answers 302 to
``http://<its own Host>/moved``; ``GET /refresh`` a ``Refresh`` to the same.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self._json({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                    "content-length": self.headers.get("Content-Length"),
                    "transfer-encoding": self.headers.get("Transfer-Encoding"),
                    "host": self.headers.get("Host")})

    def do_GET(self) -> None:  # noqa: N802
        own = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"{own}/moved")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/refresh":
            self.send_response(200)
            self.send_header("Refresh", f"0; url={own}/moved")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json({"host": self.headers.get("Host"), "path": self.path})

    def _json(self, info: dict[str, object]) -> None:
        data = json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


if __name__ == "__main__":
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
