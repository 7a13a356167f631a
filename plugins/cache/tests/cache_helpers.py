"""Steps for the cache tests (``<extension module="cache_helpers"/>``).

* ``<served-by/>``: a filter adding ``X-Served-By: <pid>`` to a found page: which worker
  answered (placed after the site holding the cache, so a hit gets it too).
* ``<counted-app/>``: content made by a step (no proxy): ``/app/N`` answers its own count with
  ``Cache-Control: max-age=60``, so the cache is shown in front of any step.
"""

from __future__ import annotations

import os

import ocsi
from ocsi import DO_NOTHING, Found, Response, Serve, Step

COUNT: dict[str, int] = {}


class ServedBy(Step):
    async def handle(self, request, state):  # type: ignore[no-untyped-def]
        if isinstance(state, Found):
            state.response.headers.set("x-served-by", str(os.getpid()))
            return Serve(state.response)
        return DO_NOTHING


class CountedApp(Step):
    async def handle(self, request, state):  # type: ignore[no-untyped-def]
        if isinstance(state, Found) or not request.sub_path_str.startswith("app/"):
            return DO_NOTHING
        COUNT[request.target] = COUNT.get(request.target, 0) + 1
        return Serve(Response(200, [("content-type", "text/plain"),
                                    ("cache-control", "max-age=60")],
                              f"count={COUNT[request.target]}".encode()))


@ocsi.hookimpl
def ocsi_elements():  # type: ignore[no-untyped-def]
    return {"served-by": lambda el, ctx: ServedBy(), "counted-app": lambda el, ctx: CountedApp()}
