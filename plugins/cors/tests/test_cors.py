"""<cors> after staticmod: in memory and over sockets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ocsi.testing import assert_config_error

EXTS = ('<extension findlib-package="ocsigenserver.ext.staticmod"/>'
        '<extension findlib-package="ocsigenserver.ext.cors"/>')


@pytest.fixture
def www(tmp_path: Path) -> Any:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "data.json").write_text('{"a": 1}')
    return tmp_path / "www"


def serve(start: Callable[..., Any], www: Any, attrs: Any="") -> Any:
    return start(EXTS + f'<host><static dir="{www}"/><cors {attrs}/></host>')


def test_nothing_without_origin_but_vary(ocsi_client, www):
    r = serve(ocsi_client, www).get("/data.json")
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"


def test_the_origin_is_echoed_with_the_attributes(ocsi_client, www):
    srv = serve(ocsi_client, www, 'credentials="true" exposed_headers="X-A, X-B" max_age="60"')
    r = srv.get("/data.json", {"Origin": "https://app.example"})
    h = r.headers
    assert h["access-control-allow-origin"] == "https://app.example"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-expose-headers"] == "X-A, X-B" and h["vary"] == "Origin"


def test_preflight(ocsi_client, www):
    srv = serve(ocsi_client, www, 'methods="GET, POST" max_age="600"')
    r = srv.request("OPTIONS", "/anything", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-token"})
    assert (r.status, r.body, r.headers["content-length"]) == (200, b"", "0")
    h = r.headers
    assert h["access-control-allow-origin"] == "https://app.example"
    assert h["access-control-allow-methods"] == "POST"
    assert h["access-control-allow-headers"] == "content-type, x-token"
    assert h["access-control-max-age"] == "600" and h["vary"] == "Origin"


def test_a_refused_preflight_is_never_a_500(ocsi_client, www):
    srv = serve(ocsi_client, www, 'methods="GET"')
    r = srv.request("OPTIONS", "/nothing-here", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"})
    assert r.status == 404 and "access-control-allow-origin" not in r.headers
    # on an existing page (Ocsigen 5.0.1: 500 Cors.Refused)
    r = srv.request("GET", "/data.json", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers


def test_an_allow_list_exact_and_wildcard(ocsi_client, www):
    srv = serve(ocsi_client, www, 'origins="https://app.example https://*.partner.example"')
    ok = {"Origin": "https://app.example"}
    assert srv.get("/data.json", ok).headers["access-control-allow-origin"] == "https://app.example"
    sub = {"Origin": "https://eu.partner.example"}
    assert srv.get("/data.json", sub).headers["access-control-allow-origin"] == "https://eu.partner.example"
    for bad in ("https://evil.example", "http://app.example", "https://partner.example.evil"):
        r = srv.get("/data.json", {"Origin": bad})
        assert "access-control-allow-origin" not in r.headers and r.headers["vary"] == "Origin", bad


def test_vary_is_kept_once(ocsi_client, www):
    ext = EXTS + '<extension findlib-package="ocsigenserver.ext.outputfilter"/>'
    srv = ocsi_client(ext + f'<host><static dir="{www}"/><outputfilter header="vary" dest="Accept-Encoding"/>'
                            '<cors/></host>')
    assert srv.get("/data.json", {"Origin": "https://a.example"}).headers.get_all("vary") == [
        "Accept-Encoding", "Origin"]


@pytest.mark.parametrize("attrs, message", [
    ('credentials="yes"', "must be true or false"),
    ('max_age="soon"', "attribute 'max_age'"),
    ('origins="*" credentials="true"', 'cannot be combined with the wildcard origin "*"'),
    ('colour="red"', "unknown attribute 'colour'"),
])
def test_errors_are_located(ocsi_memory, www, attrs, message):
    assert_config_error(ocsi_memory, EXTS + f"<host>\n<cors {attrs}/></host>", message, line=2)
