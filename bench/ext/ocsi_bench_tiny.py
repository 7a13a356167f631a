"""Benchmark extension: ``<tiny/>`` answers every request with a fixed 13-byte body.

It measures the server itself (HTTP layer, host selection, the step loop) with nothing else
on the path, the same response hypercorn's ``bench/hypercorn_app.py`` gives.
"""

from __future__ import annotations

import ocsi
from ocsi import DO_NOTHING, Found, Headers, Response, Serve

BODY = b"hello, world\n"


class Tiny(ocsi.Step):
    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, Headers([("content-type", "text/plain")]), BODY))


def _tiny(el, ctx):
    el.check()
    return Tiny()


@ocsi.hookimpl
def ocsi_elements():
    return {"tiny": _tiny}
