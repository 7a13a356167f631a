"""Test extension depending on ocsi-ext-testbase: options and a pipe command."""

from __future__ import annotations

import ocsi
import ocsi_ext_testbase
from ocsi import DO_NOTHING, Found, Response, Serve

LOADED_AFTER_BASE = "ocsi_ext_testbase" in __import__("sys").modules


class Hello(ocsi.Step):
    def __init__(self, greeting: str, name: str) -> None:
        self.text = f"{greeting}, {name}!"

    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, [("content-type", "text/plain")], self.text.encode()))


@ocsi.hookimpl
def ocsi_extension_options(options, ctx):
    greeting = "Hello"
    for opt in options:
        opt.check(attributes=["value"])
        if opt.tag != "greeting":
            raise opt.error(f"unknown option <{opt.tag}>", hint="known: greeting")
        greeting = opt.require("value")
    return {"greeting": greeting}


def _hello(el, ctx):
    el.check(attributes=["name"])
    opts = ctx.options("ocsi-ext-testhello") or {"greeting": "Hello"}
    return Hello(opts["greeting"], el.get("name", "world"))


@ocsi.hookimpl
def ocsi_elements():
    return {"hello": _hello}


@ocsi.hookimpl
def ocsi_commands():
    def ping(args):
        ocsi_ext_testbase.EVENTS.append("hello:ping " + " ".join(args))
        return "pong"

    return {"ping": ping}
