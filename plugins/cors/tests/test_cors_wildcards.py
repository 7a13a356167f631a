"""Wildcard origins cost time linear in the ``Origin`` however many stars they have (issue 26)."""

from __future__ import annotations

from test_cors import serve, www  # noqa: F401  (the fixture)


def test_two_stars_and_a_20_kb_origin(ocsi_server, www):  # noqa: F811
    srv = serve(ocsi_server, www, 'origins="https://*.*.example.org"')
    long = {"Origin": "https://" + "a." * 10_000 + "example.com"}
    r = srv.get("/data.json", long)
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    ok = {"Origin": "https://a.b.example.org"}
    assert srv.get("/data.json", ok).headers["access-control-allow-origin"] == "https://a.b.example.org"


def test_sixteen_stars_and_a_40_character_origin(ocsi_server, www):  # noqa: F811
    srv = serve(ocsi_server, www, 'origins="https://' + "*" * 16 + '.example.org"')
    r = srv.get("/data.json", {"Origin": "https://" + "a" * 32})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    ok = {"Origin": "https://www.example.org"}
    assert srv.get("/data.json", ok).headers["access-control-allow-origin"] == "https://www.example.org"
    slash = {"Origin": "https://a/b.example.org"}  # a star never matches "/"
    assert "access-control-allow-origin" not in srv.get("/data.json", slash).headers
