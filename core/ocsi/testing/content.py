"""Content for tests: ``<extension module="ocsi.testing.content"/>`` (:data:`CONTENT`).

An extension's tests need pages to filter, restrict or compress; these steps are those pages, so
no test writes its own throwaway content extension:

* ``<page path="REGEXP" body="TEXT" status="200" type="text/plain"/>``: serves ``TEXT`` when
  ``REGEXP`` (default ``.*``) matches the whole sub-path, else passes the current status on.
* ``<echo/>``: serves ``client=… peer=… secure=… fwd=… sub=…``, what the server knows of the
  request's origin (after any ``X-Forwarded-For`` handling).
* ``<fail status="403"/>``: never serves; answers ``Next(status)``.
* ``<mark value="X"/>``: an output filter adding ``x-mark: X`` to a page found before it.
"""

from __future__ import annotations

import re

from .. import (DO_NOTHING, Answer, Element, ElementParser, Found, Next, ParseContext, Request, Response, Serve,
               State, Step, hookimpl)

__all__ = ["CONTENT", "ocsi_elements"]

#: The ``<extension>`` line that loads these steps.
CONTENT = '<extension module="ocsi.testing.content"/>'


class Page(Step):
    """A page: ``body`` with ``status`` on the sub-paths ``regexp`` matches."""

    def __init__(self, regexp: str, body: str, status: int, ctype: str) -> None:
        self.regexp = re.compile(regexp)
        self.body = body.encode()
        self.status = status
        self.ctype = ctype

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        if self.regexp.fullmatch(request.sub_path_str) is None:
            return Next(state.status)
        return Serve(Response(self.status, [("content-type", self.ctype)], self.body))


class Echo(Step):
    """What the server knows of where the request comes from."""

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        text = (f"client={request.client} peer={request.peer} secure={request.secure} "
                f"fwd={','.join(request.forwarded_for)} sub={request.sub_path_str}")
        return Serve(Response(200, [("content-type", "text/plain")], text.encode()))


class Fail(Step):
    """A generator that never serves."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def handle(self, request: Request, state: State) -> Answer:
        return DO_NOTHING if isinstance(state, Found) else Next(self.status)


class Mark(Step):
    """A filter: the page found so far, with ``x-mark`` added."""

    def __init__(self, value: str) -> None:
        self.value = value

    async def handle(self, request: Request, state: State) -> Answer:
        if not isinstance(state, Found):
            return Next(state.status)
        resp = state.response
        headers = resp.headers.copy()
        headers.add("x-mark", self.value)
        return Serve(Response(resp.status, headers, resp.body))


def _status(el: Element, name: str, default: str) -> int:
    text = el.get(name) or default
    if not text.isdigit() or not 100 <= int(text) <= 599:
        raise el.error(f"{name}='{text}' is not an HTTP status")
    return int(text)


def _page(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["path", "body", "status", "type"])
    return Page(el.get("path") or ".*", el.get("body") or "page", _status(el, "status", "200"),
                el.get("type") or "text/plain")


def _echo(el: Element, ctx: ParseContext) -> Step:
    el.check()
    return Echo()


def _fail(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["status"])
    return Fail(_status(el, "status", "403"))


def _mark(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["value"])
    return Mark(el.require("value"))


@hookimpl
def ocsi_elements() -> dict[str, ElementParser]:
    return {"page": _page, "echo": _echo, "fail": _fail, "mark": _mark}
