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
from ocsi import DO_NOTHING, Answer, Element, ElementParser, Found, ParseContext, Request, Response, Serve, State, Step


class Page(Step):
    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        text = f"pid={os.getpid()} client={request.client}"
        return Serve(Response(200, [("content-type", "text/plain")], text.encode()))


class Hold(Step):
    def __init__(self, path: str) -> None:
        self.path = path

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found) or request.sub_path_str != "hold":
            return DO_NOTHING
        deadline = time.monotonic() + 30
        while not os.path.exists(self.path) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return Serve(Response(200, [("content-type", "text/plain")], b"released"))


class Login(Step):
    async def handle(self, request: Request, state: State) -> Answer:
        user = request.headers.get("x-login")
        if user:
            request.stash["user"] = user
        return DO_NOTHING


def _page(el: Element, ctx: ParseContext) -> Step:
    el.check()
    return Page()


def _hold(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["file"])
    return Hold(el.require("file"))


def _login(el: Element, ctx: ParseContext) -> Step:
    el.check()
    return Login()


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ElementParser]:
    return {"page": _page, "hold": _hold, "login": _login}
