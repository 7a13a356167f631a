"""Configuration errors are located (file:line) and say what was expected; Python API shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ocsi import ConfigError, FunctionStep, Response, Serve
from ocsi.embed import host, site
from ocsi.testing import build_pipeline
from ocsi_ext_accesscontrol import (
    allow_forward_for,
    forbidden,
    header,
    if_,
    iffound,
    ifnotfound,
    ip,
    method,
    nextsite,
    not_,
    stop,
)

PRE = '<extension findlib-package="ocsi-ext-accesscontrol"/>\n'


def error_of(body: str) -> str:
    with pytest.raises(ConfigError) as e:
        build_pipeline(PRE + f'<host hostfilter="*">\n{body}\n</host>')
    return str(e.value)


@pytest.mark.parametrize("body, message", [
    ("<if/>", "bad condition in <if>: it is empty"),
    ("<if><then/></if>", "<then> found where the condition was expected"),
    ("<if><ssl/></if>", "expected <then> after the condition, found nothing"),
    ("<if><ssl/><else/></if>", "expected <then> after the condition, found <else>"),
    ("<if><ssl/><then/><ssl/></if>", "found a second condition"),
    ("<if><ssl/><then/><else/><else/></if>", "<else> must be last"),
    ("<if><bogus/><then/></if>", "<bogus> is not a condition"),
    ('<if x="1"><ssl/><then/></if>', "unknown attribute 'x' in <if>"),
    ('<if><ssl/><then a="b"/></if>', "unknown attribute 'a' in <then>"),
    ("<if><ssl/><then><nosuch/></then></if>", "unknown element <nosuch>"),
    ('<if><ip value="1.2.3"/><then/></if>', "Bad ip/netmask [1.2.3] in <ip> condition"),
    ('<forbidden code="1"/>', "unknown attribute 'code' in <forbidden>"),
    ("<notfound><ssl/></notfound>", "unknown element <ssl>"),
    ("<stop>now</stop>", "takes no text"),
    ('<ifnotfound code="4(("/>', "in <ifnotfound code>: bad regular expression '4(('"),
    ('<iffound code="1"/>', "unknown attribute 'code' in <iffound>"),
    ('<allow-forward-for check-equal-ip="maybe"/>', "check-equal-ip"),
    ('<allow-forward-for proxies="nope"/>', "bad trusted proxy list"),
    ('<allow-forward-proto foo="1"/>', "unknown attribute 'foo'"),
])
def test_errors_are_located(body: str, message: str) -> None:
    text = error_of(body)
    assert message in text
    assert text.startswith("<test>:3"), text


def test_hint_lists_conditions() -> None:
    assert "hint: conditions: <ip>, <port>" in error_of("<if><bogus/><then/></if>")


def test_children_reach_lifecycles() -> None:
    p = build_pipeline(PRE + '<host hostfilter="*"><if><ssl/><then><forbidden/></then>'
                       '<else><iffound><stop/></iffound></else></if>'
                       '<ifnotfound><nextsite/></ifnotfound></host>')
    names = [type(s).__name__ for s in p.steps()]
    assert names == ["If", "Forbidden", "IfFound", "Stop", "IfNotFound", "NextSite"]


def text_step(text: str) -> Any:
    async def fn(request: Any, state: Any) -> Any:
        from ocsi import DO_NOTHING, Found
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, [("content-type", "text/plain")], text.encode()))
    return FunctionStep(fn)


def test_python_embedding(ocsi_memory: Callable[..., Any]) -> None:
    h1 = host(
        allow_forward_for(proxies="127.0.0.1"),
        if_(not_(ip("10.0.0.0/8")), then=[forbidden()]),
        site("api", if_(method("POST"), then=text_step("posted"), else_=[nextsite()])),
        if_(header("x-fallthrough", "yes"), then=stop()),
        text_step("h1"),
    )
    h2 = host(ifnotfound(text_step("h2"), code="404"), iffound(forbidden()))
    srv = ocsi_memory([h1, h2])

    def run(target: str = "/", method: str = "GET", **kw: Any) -> Any:
        r = srv.request(method, target, **kw)
        return r.status, r.body

    xff = {"X-Forwarded-For": "10.1.1.1"}
    assert run() == (403, b"Error: Forbidden")
    assert run(headers=xff) == (200, b"h1")
    assert run("/api/x", "POST", headers=xff) == (200, b"posted")
    assert run("/api/x", headers=xff) == (200, b"h1")
    assert run(headers={**xff, "x-fallthrough": "yes"})[0] == 404
    assert run(client="10.0.0.1") == (200, b"h1")


def test_python_constructor_type_errors() -> None:
    with pytest.raises(TypeError):
        if_("not a condition", then=[])  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(TypeError):
        iffound(["not a step"])  # type: ignore[list-item]  # wrong on purpose
    with pytest.raises(ValueError):
        ifnotfound([], code="(")
