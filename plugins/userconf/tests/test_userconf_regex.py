"""Patterns in a user's file cannot freeze the server (issue 26): they are matched in linear
time, and the ones too large to be cheap are that user's 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from test_userconf import homes, user_file  # noqa: F401  (the fixture)

EXTS = ''.join(f'<extension findlib-package="ocsigenserver.ext.{e}"/>'
               for e in ("staticmod", "userconf", "accesscontrol", "cors"))


def serve(start: Callable[..., Any], homes: Any) -> Any:  # noqa: F811
    return start(EXTS + f'<host><userconf regexp="~([^/]*)(.*)" conf="{homes}/\\1/.ocsi.conf" '
                        f'url="\\2" prefix="~\\1" localpath="{homes}/\\1/public_html"/></host>')


def test_counted_repetitions_in_a_path_guard(ocsi_server, homes):  # noqa: F811
    guard = "a{0,12}" * 8 + "b"  # 5.7 s on 60 characters for a backtracking matcher
    user_file(homes, "bob", f'<site path=""><if><path regexp="{guard}"/><then><forbidden/></then>'
                            '</if><static dir="."/></site>')
    srv = serve(ocsi_server, homes)
    assert srv.get("/~bob/" + "a" * 60).status == 404
    assert srv.get("/~bob/aab").status == 403
    assert srv.get("/~bob/page.html").body == b"bob's page"


def test_sixteen_stars_in_a_users_cors_origins(ocsi_server, homes):  # noqa: F811
    user_file(homes, "bob", '<site path=""><static dir="."/>'
                            '<cors origins="https://' + "*" * 16 + '.example.org"/></site>')
    srv = serve(ocsi_server, homes)
    r = srv.get("/~bob/page.html", {"Origin": "https://" + "a" * 32})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    r = srv.get("/~bob/page.html", {"Origin": "https://www.example.org"})
    assert r.headers["access-control-allow-origin"] == "https://www.example.org"


def test_a_pattern_too_large_is_that_users_500(ocsi_server, homes):  # noqa: F811
    user_file(homes, "bob", '<site path=""><if><path regexp="a{0,25}a{0,25}a{0,25}a{0,25}a{0,25}a{0,25}a{0,25}a{0,25}b"/><then><forbidden/>'
                            '</then></if><static dir="."/></site>')
    srv = serve(ocsi_server, homes)
    assert srv.get("/~bob/page.html").status == 500
    assert srv.get("/~alice/page.html").body == b"alice's page"
    assert "RE2 instructions" in srv.wait_log("errors", "RE2 instructions")
