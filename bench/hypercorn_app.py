"""Minimal ASGI app used as the Python reference for the ``tiny-*`` scenarios.

Why it exists: ocsi is a Python server, so besides C (nginx) and OCaml
(Ocsigen) references we want a well-known *Python* server answering the
same fixed body.  Hypercorn running this app gives the cost of "a Python
HTTP/1.1 stack plus one trivial handler", which is the floor ocsi's own
tiny handler should be compared with.

Run: ``hypercorn --workers 1 --bind 127.0.0.1:PORT bench.hypercorn_app:app``
(from the repository root).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = b"hello, world\n"
"""Same 13 bytes as nginx's ``/tiny`` location and Ocsigen's ``tiny.txt``."""

_OK_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"content-length", str(len(BODY)).encode()),
]
_NOT_FOUND = b"Not Found\n"
_NOT_FOUND_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"content-length", str(len(_NOT_FOUND)).encode()),
]


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown, and do nothing else (also used by ``apps.py``)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``GET /`` with :data:`BODY`, anything else with a 404.

    The 404 branch lets hypercorn take part in ``notfound-64`` too.  Lifespan
    events are acknowledged so hypercorn does not log a warning at startup.
    """
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/":
        status, headers, body = 200, _OK_HEADERS, BODY
    else:
        status, headers, body = 404, _NOT_FOUND_HEADERS, _NOT_FOUND
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
