"""An ASGI application for the cache tests: ``/n`` answers how many requests it has had, with
``Cache-Control: max-age=60`` and an ETag; ``/vary`` answers by ``Accept-Language``."""

from __future__ import annotations

from typing import Any

calls = {"n": 0}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    calls["n"] += 1
    headers = dict(scope["headers"])
    if scope["path"] == "/vary":
        body = (headers.get(b"accept-language") or b"none")
        extra = [(b"vary", b"accept-language")]
    else:
        body = f"call {calls['n']}".encode()
        extra = [(b"etag", b'"n"')]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"cache-control", b"max-age=60"), *extra]})
    await send({"type": "http.response.body", "body": body})
