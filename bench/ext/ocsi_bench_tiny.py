"""Benchmark extension: ``<tiny/>`` answers every request with a fixed 13-byte body
(``<tiny size="100"/>``: that many bytes).

It measures the server itself (HTTP layer, host selection, the step loop) with nothing else
on the path: the same response hypercorn's ``bench/hypercorn_app.py`` gives, and at 100 bytes
the same as ``bench/apps.py``'s plain ASGI app under uvicorn (the ``mem-*`` rows).
"""

from __future__ import annotations

import ocsi
from ocsi import DO_NOTHING, Found, Headers, Response, Serve

BODY = b"hello, world\n"


class Tiny(ocsi.Step):
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, Headers([("content-type", "text/plain")]), self.body))


def _tiny(el, ctx):
    el.check(attributes=["size"])
    size = el.attr_value("size", int, 0)
    return Tiny(b"x" * (size - 1) + b"\n" if size else BODY)


@ocsi.hookimpl
def ocsi_elements():
    return {"tiny": _tiny}
