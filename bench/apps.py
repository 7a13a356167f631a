"""The applications of the application rows: the same code under every server.

- ``plain``: ASGI 3, a fixed 100-byte body (the cost of the server's HTTP and ASGI layers);
- ``starlette_app``: one Starlette route answering the same body (a real framework's cost);
- ``wsgi``: WSGI, the same body (against gunicorn's threads).
Lifespan is answered (and ignored) so no server logs a complaint about it.
"""

from __future__ import annotations

from typing import Any

from hypercorn_app import answer_lifespan  # bench/ is on the path of every server running us

BODY = b"x" * 99 + b"\n"
_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"100")]


async def plain(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def _starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse(BODY.decode())

    return Starlette(routes=[Route("/", hello)])


try:
    starlette_app = _starlette()
except ImportError:  # pragma: no cover - the row is skipped then
    starlette_app = None


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
    return [BODY]
