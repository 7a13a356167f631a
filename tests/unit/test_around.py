"""The ``Around`` answer: a step that runs the steps after it itself (what a cache needs)."""

from __future__ import annotations

import asyncio
from typing import Any

import ocsi
from ocsi import DO_NOTHING, Around, Found, NotFound, Response, Serve, ServeNow, StopSite
from ocsi.embed import host, site
from ocsi._pipeline.engine import Pipeline
from ocsi.testing import make_request


def step(fn: Any) -> ocsi.Step:
    return ocsi.FunctionStep(fn)


def page(text: str) -> ocsi.Step:
    async def fn(request: ocsi.Request, state: ocsi.State) -> ocsi.Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, [("x-target", request.target)], text.encode()))
    return step(fn)


def respond(*hosts: Any, target: str = "/") -> Response:
    return asyncio.run(Pipeline(list(hosts)).respond(make_request(target=target)))


def body(resp: Response) -> bytes:
    return resp.body.data  # type: ignore[attr-defined, no-any-return]


def wrapping(calls: list[str], answer_itself: bool = False, target: str | None = None) -> ocsi.Step:
    async def fn(request: ocsi.Request, state: ocsi.State) -> ocsi.Answer:
        async def wrapper(request: ocsi.Request, state: ocsi.State,
                          rest: ocsi.Rest) -> ocsi.State:
            calls.append("before")
            if answer_itself:
                return Found(Response(200, [], b"mine"))
            out = await rest(request.with_target(target) if target else request, state)
            calls.append("after")
            if isinstance(out, Found):
                out.response.headers.set("x-wrapped", "yes")
            return out
        return Around(wrapper)
    return step(fn)


def test_the_wrapper_sees_what_the_steps_after_it_answer() -> None:
    calls: list[str] = []
    r = respond(host(wrapping(calls), page("p")))
    assert (body(r), r.headers.get("x-wrapped"), calls) == (b"p", "yes", ["before", "after"])


def test_the_wrapper_may_answer_itself_and_skip_them() -> None:
    calls: list[str] = []
    r = respond(host(wrapping(calls, answer_itself=True), page("p")))
    assert body(r) == b"mine" and calls == ["before"]


def test_the_wrapper_may_change_the_request() -> None:
    r = respond(host(wrapping([], target="/other"), page("p")))
    assert r.headers.get("x-target") == "/other"


def test_only_the_steps_of_its_own_site() -> None:
    r = respond(host(site("s", wrapping([]), page("in")), page("out")), target="/s/x")
    assert body(r) == b"in" and r.headers.get("x-wrapped") == "yes"
    r = respond(host(site("s", wrapping([])), page("out")), target="/s/x")
    assert body(r) == b"out" and r.headers.get("x-wrapped") is None  # nothing in the site


def test_serve_now_among_them_sends_the_wrappers_response() -> None:
    async def now(request: ocsi.Request, state: ocsi.State) -> ocsi.Answer:
        return ServeNow(Response(201, [], b"now"))
    r = respond(host(wrapping([]), step(now), page("never")), host(page("other host")))
    assert (r.status, body(r), r.headers.get("x-wrapped")) == (201, b"now", "yes")


def test_stop_site_among_them_leaves_the_site() -> None:
    async def stop(request: ocsi.Request, state: ocsi.State) -> ocsi.Answer:
        return StopSite(404)
    r = respond(host(site("s", wrapping([]), step(stop), page("never")), page("after")),
                target="/s/x")
    assert body(r) == b"after"


def test_not_found_passes_through() -> None:
    calls: list[str] = []
    r = respond(host(wrapping(calls)))
    assert r.status == 404 and calls == ["before", "after"]
    assert isinstance(NotFound(404), NotFound)
