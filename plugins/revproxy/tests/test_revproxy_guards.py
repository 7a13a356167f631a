"""accesscontrol guards in front of a real backend: a decoded control character does not walk
past a ``<path regexp>`` guard, and a crafted header does not freeze the server (issue 26)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import EXT

EXTS = EXT + '<extension findlib-package="ocsi-ext-accesscontrol"/>'


def guarded(ocsi_server: Callable[..., Any], b: Any, condition: str) -> Any:
    return ocsi_server(EXTS + f'<host><site path="app"><if>{condition}<then><forbidden/></then></if>'
                              f'<revproxy suburl="(.*)" dest="{b.url}/\\1"/></site></host>')


@pytest.mark.parametrize("target", [
    "/app/admin/secret",
    "/app/admin/secret%0a",
    "/app/admin%0a/secret",
    "/app/admin/%0a",
    "/app/admin%0d%0a/secret",
    "/app/admin/secret%00",
    "/app/admin/%7f",
    "/app/admin/%0b",
])
def test_a_control_character_does_not_walk_past_a_path_guard(ocsi_server, backend, target):
    b = backend()
    srv = guarded(ocsi_server, b, '<path regexp="admin.*"/>')
    assert srv.get(target).status in (400, 403)
    assert srv.get("/app/echo/ok").status == 200  # the guard lets the rest through
    assert b.requests == 1  # only that one reached the backend


def test_a_crafted_header_does_not_freeze_the_server(ocsi_server, backend):
    b = backend()
    srv = guarded(ocsi_server, b, '<header name="x-tag" regexp="([a-z0-9]+)*-x"/>')
    # 2**40 ways to split for a backtracking matcher; linear for the engine ocsi uses
    assert srv.get("/app/echo/a", headers={"x-tag": "a" * 40}).status == 200
    assert srv.get("/app/echo/b", headers={"x-tag": "abc-x"}).status == 403
    assert srv.get("/app/echo/c").status == 200
    assert b.requests == 2
