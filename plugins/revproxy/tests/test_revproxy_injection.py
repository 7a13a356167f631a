"""What the proxy writes to a backend is a head it would accept itself.

Over HTTP/2 a client can put a request line into ``:method`` (``GET /admin/secret
HTTP/1.1\\x0b``): a path guard sees ``/app/x``, and a proxy that wrote
``{method} {target} HTTP/1.1`` would hand a lenient backend a request for ``/admin/secret``.
The backend here parses nothing and records the bytes it receives, so the tests see exactly
what was written. The server refuses such requests before any step (400); the proxy's client
side refuses to write anything a step may have made unwritable (502 and a log line)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from backend import RawBackend
from conftest import EXT
from ocsi import DO_NOTHING, FunctionStep, Request, State
from ocsi.testing import H2Client

ACCESS = '<extension findlib-package="ocsi-ext-accesscontrol"/>'


def guarded(ocsi_server: Callable[..., Any], raw: RawBackend) -> Any:
    """``/app/`` proxied to ``raw``, ``admin…`` below it forbidden, on a port that takes h2c."""
    return ocsi_server(
        '<ocsigen><server><port h2c="true">127.0.0.1:{port}</port>'
        f"<logdir>{{tmp}}/log</logdir>{ACCESS}{EXT}"
        '<host><site path="app"><if><path regexp="admin.*"/><then><forbidden/></then></if>'
        f'<revproxy suburl="(.*)" dest="{raw.url}/\\1"/></site></host></server></ocsigen>',
        full=True)


def _status(c: H2Client, sid: int) -> bytes:
    return c.responses(1)[sid][0][b":status"]


def test_the_request_line_injection_over_http2_never_reaches_the_backend(ocsi_server, raw_backend):
    srv = guarded(ocsi_server, raw_backend)
    c = H2Client(srv.port, tls=False, strict=False)
    assert _status(c, c.request("/app/x")) == b"200"
    assert _status(c, c.request("/app/admin/secret")) == b"403"
    for parts in [
        {"method": b"GET /admin/secret HTTP/1.1\x0b", "path": b"/app/x"},  # the request
        {"method": b"GET /admin/secret HTTP/1.1\x0c", "path": b"/app/x"},
        {"path": b"/app/x\x0b/admin/secret"},
        {"path": b"/app/x\x0c"},
        {"path": b"/app/x\x7f"},
        {"path": b"/app/x HTTP/1.1"},
        {"path": b"/app/x", "headers": [(b"x-a", b"a\x01b")]},
        {"path": b"/app/x", "headers": [(b"x-a", b"a\x7fb")]},
        {"path": b"/app/x", "headers": [(b'x(a)"/', b"v")]},
    ]:
        assert _status(c, c.request(**parts)) == b"400", parts
    assert _status(c, c.request("/app/y")) == b"200"
    heads = raw_backend.heads
    assert len(heads) == 2, heads
    assert heads[0].startswith(b"GET /x HTTP/1.1\r\n") and heads[1].startswith(b"GET /y HTTP/1.1\r\n")
    assert not any(b"admin" in h or b"\x01" in h or b"\x7f" in h for h in heads)


def test_control_characters_in_an_http11_value_are_refused_too(ocsi_server, raw_backend):
    srv = guarded(ocsi_server, raw_backend)
    answer = srv.raw(b"GET /app/x HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert srv.get("/app/z").status == 200
    assert len(raw_backend.heads) == 1 and raw_backend.heads[0].startswith(b"GET /z HTTP/1.1\r\n")


def _corrupt(how: str) -> Any:
    """A step before the proxy that makes ``/bad`` unwritable (as a buggy extension might)."""
    async def step(request: Request, state: State) -> Any:
        if request.sub_path_str == "bad":
            if how == "method":
                request.method = "GET /admin/secret HTTP/1.1\x0b"
            elif how == "value":
                request.headers.add("x-bad", "a\x01b")
            elif how == "name":
                request.headers.add('x(a)"/', "v")
            elif how == "not latin-1":
                request.headers.add("x-bad", "\u0100")
        return DO_NOTHING
    return step


@pytest.mark.parametrize("how", ["method", "value", "name", "not latin-1", "target"])
def test_the_proxy_refuses_to_write_a_head_it_would_not_take(ocsi_memory, raw_backend, how, caplog):
    from ocsi.embed import host
    from ocsi_ext_revproxy import revproxy

    dest = f"{raw_backend.url}/" + ("\\1\x7f" if how == "target" else "\\1")
    srv = ocsi_memory([host(FunctionStep(_corrupt(how)), revproxy(suburl="(.*)", dest=dest))])
    with caplog.at_level(logging.ERROR, logger="ocsi.ext.revproxy"):
        assert srv.get("/bad").status == 502
    assert any("refused to write" in r.getMessage() for r in caplog.records), caplog.text
    assert not any(c in caplog.text for c in "\x0b\x01\x7f")  # quoted in the log
    if how != "target":
        assert srv.get("/good").status == 200
        assert [h.split(b"\r\n")[0] for h in raw_backend.heads] == [b"GET /good HTTP/1.1"]
    else:
        assert raw_backend.heads == []

