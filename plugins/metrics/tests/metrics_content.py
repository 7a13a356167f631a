"""Content for the metrics tests (``<extension module="metrics_content"/>``).

* ``<pid/>``: answers ``/pid`` with the process id of the worker that took the request.
"""

from __future__ import annotations

import os

import ocsi
from ocsi import DO_NOTHING, BytesBody, Found, Headers, Response, Serve, Step


class Pid(Step):
    async def handle(self, request, state):  # type: ignore[no-untyped-def]
        if isinstance(state, Found) or request.sub_path_str != "pid":
            return DO_NOTHING
        return Serve(Response(200, Headers([("content-type", "text/plain")]),
                              BytesBody(str(os.getpid()).encode())))


@ocsi.hookimpl
def ocsi_elements():  # type: ignore[no-untyped-def]
    return {"pid": lambda el, ctx: Pid()}
