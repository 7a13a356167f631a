"""A tiny content extension for the accesscontrol tests (``<extension module="ac_content"/>``).

* ``<page path="REGEXP" body="TEXT" status="200"/>``: a content generator; serves ``TEXT`` when
  the regexp (default ``.*``) fully matches the sub-path, else passes the current status on.
* ``<echo/>``: serves ``client=… peer=… secure=… fwd=… sub=…`` for every request.
* ``<fail status="403"/>``: a generator that never serves, answering ``Next(status)``.
* ``<mark value="X"/>``: an output filter adding ``x-mark: X`` to a found page.
"""

from __future__ import annotations

import re

import ocsi
from ocsi import (DO_NOTHING, Answer, Element, ElementParser, Found, Next, ParseContext, Request, Response, Serve,
                  State, Step)


class Page(Step):
    def __init__(self, regexp: str, body: str, status: int) -> None:
        self.regexp = re.compile(regexp)
        self.body = body.encode()
        self.status = status

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        if self.regexp.fullmatch(request.sub_path_str) is None:
            return Next(state.status)
        return Serve(Response(self.status, [("content-type", "text/plain")], self.body))


class Echo(Step):
    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        text = (f"client={request.client} peer={request.peer} secure={request.secure} "
                f"fwd={','.join(request.forwarded_for)} sub={request.sub_path_str}")
        return Serve(Response(200, [("content-type", "text/plain")], text.encode()))


class Fail(Step):
    def __init__(self, status: int) -> None:
        self.status = status

    async def handle(self, request: Request, state: State) -> Answer:
        return DO_NOTHING if isinstance(state, Found) else Next(self.status)


class Mark(Step):
    def __init__(self, value: str) -> None:
        self.value = value

    async def handle(self, request: Request, state: State) -> Answer:
        if not isinstance(state, Found):
            return Next(state.status)
        resp = state.response
        headers = resp.headers.copy()
        headers.add("x-mark", self.value)
        return Serve(Response(resp.status, headers, resp.body))


def _page(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["path", "body", "status"])
    return Page(el.get("path", ".*"), el.get("body", "page"), int(el.get("status", "200")))


def _echo(el: Element, ctx: ParseContext) -> Step:
    el.check()
    return Echo()


def _fail(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["status"])
    return Fail(int(el.require("status")))


def _mark(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["value"])
    return Mark(el.require("value"))


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ElementParser]:
    return {"page": _page, "echo": _echo, "fail": _fail, "mark": _mark}
