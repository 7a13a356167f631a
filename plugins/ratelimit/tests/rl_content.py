"""Content for the ratelimit tests (``<extension module="rl_content"/>``).

* ``<page/>``: serves ``pid=… client=…``: which worker answered, for whom.
* ``<hold file="PATH"/>``: answers ``/hold`` once ``PATH`` exists (at most 30 s): a request
  that stays in progress until the test lets it go.
* ``<login user="NAME"/>``: marks the request as authenticated by ``NAME`` when it carries
  ``X-Login: NAME`` (what authbasic does for a valid credential).
"""

from __future__ import annotations

import asyncio
import os
import time

import ocsi
from ocsi import DO_NOTHING, Found, Response, Serve, Step


class Page(Step):
    async def handle(self, request, state):  # type: ignore[no-untyped-def]
        if isinstance(state, Found):
            return DO_NOTHING
        text = f"pid={os.getpid()} client={request.client}"
        return Serve(Response(200, [("content-type", "text/plain")], text.encode()))


class Hold(Step):
    def __init__(self, path: str) -> None:
        self.path = path

    async def handle(self, request, state):  # type: ignore[no-untyped-def]
        if isinstance(state, Found) or request.sub_path_str != "hold":
            return DO_NOTHING
        deadline = time.monotonic() + 30
        while not os.path.exists(self.path) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return Serve(Response(200, [("content-type", "text/plain")], b"released"))


class Login(Step):
    async def handle(self, request, state):  # type: ignore[no-untyped-def]
        user = request.headers.get("x-login")
        if user:
            request.stash["user"] = user
        return DO_NOTHING


def _page(el, ctx):  # type: ignore[no-untyped-def]
    el.check()
    return Page()


def _hold(el, ctx):  # type: ignore[no-untyped-def]
    el.check(attributes=["file"])
    return Hold(el.require("file"))


def _login(el, ctx):  # type: ignore[no-untyped-def]
    el.check()
    return Login()


@ocsi.hookimpl
def ocsi_elements():  # type: ignore[no-untyped-def]
    return {"page": _page, "hold": _hold, "login": _login}
