"""A raw WSGI application: the environ, wsgi.input, file_wrapper, close(), a slow answer."""

import json
import threading

CLOSED = []
RELEASE = threading.Event()


class Body:
    def __init__(self, parts):
        self.parts = parts

    def __iter__(self):
        return iter(self.parts)

    def close(self):
        CLOSED.append(True)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/environ":
        keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
                "HTTP_X_TEST", "wsgi.url_scheme", "REMOTE_ADDR", "CONTENT_LENGTH")
        body = json.dumps({k: environ.get(k) for k in keys}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return Body([body])
    if path == "/input":
        total = 0
        while chunk := environ["wsgi.input"].read(65536):
            total += len(chunk)
        start_response("200 OK", [])
        return [str(total).encode()]
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"))
    if path == "/slow":
        RELEASE.wait(10)
        start_response("200 OK", [])
        return [b"slow"]
    if path == "/raise":
        raise RuntimeError("wsgi broke")
    start_response("404 Not Found", [])
    return [b"wsgi 404"]
