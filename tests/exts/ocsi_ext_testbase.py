"""Test extension: small steps exercising every answer of the pipeline.

``<say text="…" [status="200"] [path="regexp"]/>`` serves ``text`` (when the sub-path matches);
``<answer kind="next|stopsite|stophost|stopall|servenow|retry|continue" [status] [url]/>``
returns that answer; ``<boom/>`` raises; ``<header name value/>`` adds a header to a found
page (an output filter); ``<echo/>`` serves the request's details and body; ``<pid/>`` serves
the id of the process that answered (worker tests); ``<slow seconds="1"/>`` answers
``/slow`` after that long (drain tests).
"""

from __future__ import annotations

import asyncio
import os
import re

import ocsi
from ocsi import (DO_NOTHING, ContinueWith, Found, Next, Response, RetryWith, Serve, ServeNow,
                  StopAll, StopHost, StopSite)
from ocsi._http.urlpath import decode_path, split_target

EVENTS: list[str] = []


class Say(ocsi.Step):
    def __init__(self, text: str, status: int, path: str | None) -> None:
        self.text, self.status = text, status
        self.path = re.compile(path) if path is not None else None

    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        if self.path is not None and not self.path.fullmatch(request.sub_path_str):
            return Next(state.status)
        return Serve(Response(self.status, [("content-type", "text/plain")], self.text.encode()))


class AnswerStep(ocsi.Step):
    def __init__(self, kind: str, status: int, url: str | None) -> None:
        self.kind, self.status, self.url = kind, status, url

    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        k = self.kind
        if k == "next":
            return Next(self.status)
        if k == "stopsite":
            return StopSite(self.status)
        if k == "stophost":
            return StopHost(self.status)
        if k == "stopall":
            return StopAll(self.status)
        if k == "servenow":
            return ServeNow(Response(self.status, [("content-type", "text/plain")], b"now"))
        path, query, _, _ = split_target(self.url or "/")
        raw, segs = decode_path(path)
        new = request.replace(raw_path=path, query=query, raw_segments=raw, segments=segs,
                              depth=0, target=self.url)
        if k == "retry":
            return RetryWith(new)
        return ContinueWith(new)


class Boom(ocsi.Step):
    async def handle(self, request, state):
        raise RuntimeError("boom: secret internal detail")


class AddHeader(ocsi.Step):
    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    async def handle(self, request, state):
        if isinstance(state, Found):
            state.response.headers.add(self.name, self.value)
            return Serve(state.response)
        return Next(state.status)


class Echo(ocsi.Step):
    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        body = await request.body.read()
        text = (f"{request.method} {request.target} sub={request.sub_path_str} host={request.host} "
                f"port={request.port} client={request.client} len={len(body)}\n").encode()
        return Serve(Response(200, [("content-type", "text/plain")], text + body))


class Slow(ocsi.Step):
    """``/slow`` is answered after ``seconds`` (an in-flight request for drain tests)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def handle(self, request, state):
        if isinstance(state, Found) or request.sub_path_str != "slow":
            return DO_NOTHING
        await asyncio.sleep(self.seconds)
        return Serve(Response(200, [("content-type", "text/plain")], b"slow"))


class Pid(ocsi.Step):
    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, [("content-type", "text/plain")], str(os.getpid()).encode()))


def _pid(el, ctx):
    el.check()
    return Pid()


def _say(el, ctx):
    el.check(attributes=["text", "status", "path"])
    return Say(el.require("text"), el.attr_value("status", ocsi.parse_int, 200),
               el.get("path"))


def _answer(el, ctx):
    el.check(attributes=["kind", "status", "url"])
    kind = el.require("kind")
    if kind not in ("next", "stopsite", "stophost", "stopall", "servenow", "retry", "continue"):
        raise el.error(f"unknown kind {kind}")
    return AnswerStep(kind, el.attr_value("status", ocsi.parse_int, 404), el.get("url"))


def _boom(el, ctx):
    el.check()
    return Boom()


def _header(el, ctx):
    el.check(attributes=["name", "value"])
    return AddHeader(el.require("name"), el.require("value"))


def _echo(el, ctx):
    el.check()
    return Echo()


def _slow(el, ctx):
    el.check(attributes=["seconds"])
    return Slow(el.attr_value("seconds", ocsi.parse_duration, 1.0))


@ocsi.hookimpl
def ocsi_elements():
    return {"say": _say, "answer": _answer, "boom": _boom, "header": _header, "echo": _echo,
            "pid": _pid, "slow": _slow}


@ocsi.hookimpl
def ocsi_commands():
    return {"ping": lambda args: EVENTS.append("base:ping " + " ".join(args)) or "pong"}
