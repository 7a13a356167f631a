"""RFC 9111's rules for a shared cache, each shown by the count of requests the origin gets."""

from __future__ import annotations

from typing import Any

import pytest
from origin import EXTS, Origin, proxied, status_of, until

TEXT = {"content-type": "text/plain"}


def fresh(**extra: str) -> dict[str, str]:
    return {**TEXT, "cache-control": "max-age=60", **extra}


@pytest.fixture(params=["files", "memory"])
def server(request: pytest.FixtureRequest, ocsi_server: Any, origin: Origin) -> Any:
    """The same behaviour with entries in files under <datadir> and in memory only."""
    datadir = request.param == "files"

    def start(attrs: str = "") -> Any:
        return ocsi_server(proxied(origin, attrs, datadir=datadir))
    return start


def test_hit_after_miss_with_age_and_cache_status(server: Any, origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"hello")
    srv = server()
    first, second, third = srv.get("/a"), srv.get("/a"), srv.get("/a")
    assert [r.body for r in (first, second, third)] == [b"hello"] * 3
    assert origin.hits("/a") == 1
    assert status_of(first) == "fwd=uri-miss; fwd-status=200; stored"
    assert status_of(second).startswith("hit; ttl=")
    assert second.headers["cache-control"] == "max-age=60"
    assert 0 <= int(second.headers["age"]) <= 60
    assert second.headers["content-type"] == "text/plain"


def test_keys_are_target_and_host(server: Any, origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"hello")
    srv = server()
    for target in ("/a", "/a?x=1", "/a?x=2", "/a?x=1"):
        srv.get(target)
    srv.get("/a", host="other.example")
    assert origin.hits("/a") + origin.hits("/a?x=1") + origin.hits("/a?x=2") == 4


@pytest.mark.parametrize("cc, stored", [
    ("no-store", False), ("private", False), ("max-age=60, private", False),
    ("public, max-age=60", True), ("s-maxage=60", True), ("max-age=0", False),
    ("no-cache", False),
])
def test_response_directives(server: Any, origin: Origin, cc: str, stored: bool) -> None:
    """Without a validator, max-age=0 and no-cache answers are not worth storing: each
    request goes to the origin."""
    origin.route("/a", headers={**TEXT, "cache-control": cc}, body=b"x")
    srv = server()
    for _ in range(3):
        assert srv.get("/a").status == 200
    assert origin.hits("/a") == (1 if stored else 3)


def test_s_maxage_wins_over_max_age_for_a_shared_cache(server: Any, origin: Origin) -> None:
    origin.route("/a", headers={**TEXT, "cache-control": "max-age=0, s-maxage=60"}, body=b"x")
    srv = server()
    srv.get("/a")
    assert status_of(srv.get("/a")).startswith("hit")
    assert origin.hits("/a") == 1


def test_expires_against_date(server: Any, origin: Origin) -> None:
    from ocsi.httputil import format_http_date
    import time
    now = time.time()
    origin.route("/future", headers={**TEXT, "date": format_http_date(now),
                                     "expires": format_http_date(now + 3600)}, body=b"f")
    origin.route("/past", headers={**TEXT, "date": format_http_date(now),
                                   "expires": format_http_date(now - 10)}, body=b"p")
    origin.route("/invalid", headers={**TEXT, "expires": "0"}, body=b"i")
    srv = server()
    for _ in range(2):
        for path in ("/future", "/past", "/invalid"):
            srv.get(path)
    assert (origin.hits("/future"), origin.hits("/past"), origin.hits("/invalid")) == (1, 2, 2)


def test_authorization_only_with_public_s_maxage_or_must_revalidate(server: Any,
                                                                  origin: Origin) -> None:
    origin.route("/plain", headers=fresh(), body=b"x")
    origin.route("/public", headers={**TEXT, "cache-control": "public, max-age=60"}, body=b"x")
    origin.route("/shared", headers={**TEXT, "cache-control": "s-maxage=60"}, body=b"x")
    srv = server()
    auth = {"Authorization": "Basic dTpw"}
    for _ in range(2):
        for path in ("/plain", "/public", "/shared"):
            assert srv.get(path, auth).status == 200
    assert (origin.hits("/plain"), origin.hits("/public"), origin.hits("/shared")) == (2, 1, 1)


def test_set_cookie_is_not_stored_unless_asked(server: Any, origin: Origin) -> None:
    origin.route("/c", headers=fresh(**{"set-cookie": "s=1"}), body=b"x")
    origin.route("/q", headers={**TEXT, "set-cookie": "s=1",
                                "cache-control": 'max-age=60, private="set-cookie"'}, body=b"q")
    srv = server()
    for _ in range(2):
        r = srv.get("/c")
        assert r.headers["set-cookie"] == "s=1"
        q = srv.get("/q")
    assert origin.hits("/c") == 2
    # private="set-cookie": the rest is stored, the cookie is not given to others
    assert origin.hits("/q") == 1 and q.headers.get("set-cookie") is None and q.body == b"q"


def test_set_cookie_stored_with_cookies_store(server: Any, origin: Origin) -> None:
    origin.route("/c", headers=fresh(**{"set-cookie": "s=1"}), body=b"x")
    srv = server('cookies="store"')
    srv.get("/c")
    assert srv.get("/c").headers["set-cookie"] == "s=1"
    assert origin.hits("/c") == 1


def test_default_lifetime_and_heuristic(server: Any, origin: Origin) -> None:
    origin.route("/none", headers=TEXT, body=b"n")
    origin.route("/lm", headers={**TEXT, "last-modified": "Mon, 01 Jan 2001 00:00:00 GMT"},
                 body=b"l")
    srv = server()
    for _ in range(2):
        srv.get("/none")
    assert origin.hits("/none") == 2  # no lifetime, no validator: not stored, no heuristic
    srv = server('default="1h"')
    for _ in range(2):
        srv.get("/none")
    assert origin.hits("/none") == 3
    srv = server('heuristic="true"')
    for _ in range(2):
        assert srv.get("/lm").body == b"l"
    assert origin.hits("/lm") == 1


def test_statuses_stored(server: Any, origin: Origin) -> None:
    origin.route("/gone", status=404, headers=fresh(), body=b"no")
    origin.route("/err", status=500, headers=fresh(), body=b"bad")
    origin.route("/created", status=201, headers=fresh(), body=b"new")
    srv = server()
    for _ in range(2):
        assert srv.get("/gone").status == 404
        assert srv.get("/err").status == 500
        srv.get("/created")
    assert (origin.hits("/gone"), origin.hits("/err"), origin.hits("/created")) == (1, 2, 2)
    srv = server('statuses="200 201"')
    for _ in range(2):
        srv.get("/gone")
        srv.get("/created")
    assert (origin.hits("/gone"), origin.hits("/created")) == (3, 3)


def test_vary_on_two_encodings(server: Any, origin: Origin) -> None:
    def by_encoding(method: str, path: str, headers: dict[str, str]) -> Any:
        enc = headers.get("accept-encoding", "")
        return 200, fresh(vary="Accept-Encoding"), f"for {enc}".encode()
    origin.route("/v", handler=by_encoding)
    srv = server()
    for _ in range(3):
        assert srv.get("/v", {"Accept-Encoding": "gzip"}).body == b"for gzip"
        assert srv.get("/v", {"Accept-Encoding": "br"}).body == b"for br"
    assert origin.hits("/v") == 2
    first = srv.get("/v", {"Accept-Encoding": "zstd"})
    assert status_of(first).startswith("fwd=vary-miss")
    assert origin.hits("/v") == 3


def test_vary_star_is_not_stored(server: Any, origin: Origin) -> None:
    origin.route("/v", headers=fresh(vary="*"), body=b"x")
    srv = server()
    srv.get("/v")
    srv.get("/v")
    assert origin.hits("/v") == 2


def test_client_no_cache_revalidates_and_no_store_does_not_store(server: Any,
                                                                 origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"x")
    origin.route("/b", headers=fresh(), body=b"y")
    srv = server()
    srv.get("/a")
    r = srv.get("/a", {"Cache-Control": "no-cache"})
    assert origin.hits("/a") == 2 and status_of(r).startswith("fwd=request")
    srv.get("/a", {"Pragma": "no-cache"})
    assert origin.hits("/a") == 3
    srv.get("/b", {"Cache-Control": "no-store"})
    srv.get("/b")
    assert origin.hits("/b") == 2


def test_only_if_cached(server: Any, origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"x")
    srv = server()
    assert srv.get("/a", {"Cache-Control": "only-if-cached"}).status == 504
    srv.get("/a")
    assert srv.get("/a", {"Cache-Control": "only-if-cached"}).status == 200
    assert origin.hits("/a") == 1


def test_unsafe_method_invalidates(server: Any, origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"x")
    srv = server()
    srv.get("/a")
    r = srv.request("POST", "/a", body=b"data")
    assert status_of(r) == "fwd=method"
    srv.get("/a")
    assert origin.hits("/a") == 3  # GET, POST, GET again


def test_bypass_conditions(server: Any, origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"x")
    srv = server('bypass="header:X-No-Cache cookie:session arg:nocache"')
    srv.get("/a")
    assert status_of(srv.get("/a", {"X-No-Cache": "1"})) == "fwd=bypass"
    assert status_of(srv.get("/a", {"X-No-Cache": "0"})).startswith("hit")
    assert status_of(srv.get("/a", {"Cookie": "a=b; session=xyz"})) == "fwd=bypass"
    origin.route("/a", headers=fresh(), body=b"x")
    assert status_of(srv.get("/a?nocache")) == "fwd=bypass"
    assert origin.hits("/a") == 3


def test_head_is_answered_from_a_get_entry(server: Any, origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"hello")
    origin.route("/b", headers=fresh(), body=b"b" * 100_000)
    srv = server()
    srv.get("/a")
    head = srv.head("/a")
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == "5"
    assert status_of(head).startswith("hit")
    # a HEAD miss goes behind as a GET, whose body fills the entry (nginx's convert_head)
    first = srv.head("/b")
    assert first.headers["content-length"] == "100000" and status_of(first).endswith("stored")
    assert until(lambda: status_of(srv.head("/b")).startswith("hit"))
    assert srv.get("/b").body == b"b" * 100_000
    assert [m for m, _, _ in origin.seen] == ["GET", "GET"]


def test_ranges_from_the_whole_body(server: Any, origin: Origin) -> None:
    body = bytes(range(256)) * 4
    origin.route("/r", headers=fresh(etag='"v1"'), body=body)
    srv = server()
    miss = srv.get("/r", {"Range": "bytes=0-9"})
    assert miss.status == 200 and miss.body == body  # the whole body, stored
    assert "range" not in origin.seen[-1][2]
    part = srv.get("/r", {"Range": "bytes=10-19"})
    assert part.status == 206 and part.body == body[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(body)}"
    suffix = srv.get("/r", {"Range": "bytes=-5"})
    assert suffix.status == 206 and suffix.body == body[-5:]
    assert srv.get("/r", {"Range": "bytes=5000-"}).status == 416
    assert srv.get("/r", {"Range": "bytes=1-2", "If-Range": '"v1"'}).status == 206
    assert srv.get("/r", {"Range": "bytes=1-2", "If-Range": '"v0"'}).body == body
    assert srv.get("/r", {"Range": "bytes=1-2,5-6"}).status == 200
    assert origin.hits("/r") == 1


def test_client_conditions_answered_from_the_entry(server: Any, origin: Origin) -> None:
    origin.route("/e", headers=fresh(etag='"v1"', **{"last-modified":
                                                      "Mon, 01 Jan 2001 00:00:00 GMT"}),
                 body=b"x")
    srv = server()
    srv.get("/e")
    r = srv.get("/e", {"If-None-Match": '"v0", W/"v1"'})
    assert r.status == 304 and r.headers["etag"] == '"v1"'
    assert srv.get("/e", {"If-None-Match": '"v0"'}).status == 200
    assert srv.get("/e", {"If-Modified-Since": "Tue, 01 Jan 2002 00:00:00 GMT"}).status == 304
    assert origin.hits("/e") == 1
    # the client's conditions are not sent behind on a miss (the whole answer is stored)
    assert "if-none-match" not in origin.seen[0][2]


def test_cache_in_front_of_a_step_of_the_server(ocsi_server: Any) -> None:
    srv = ocsi_server(EXTS + '<host><cache/><counted-app/></host>')
    assert [srv.get("/app/1").body for _ in range(3)] == [b"count=1"] * 3


def test_cache_in_a_site_caches_that_site_only(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/c/a", headers=fresh(), body=b"x")
    origin.route("/a", headers=fresh(), body=b"y")
    srv = ocsi_server(EXTS + f'<host><site path="c"><cache/>'
                      f'<revproxy suburl="(.*)" dest="{origin.url}/c/\\1"/></site>'
                      f'<revproxy suburl="(.*)" dest="{origin.url}/\\1"/></host>')
    for _ in range(2):
        assert srv.get("/c/a").body == b"x"
        assert srv.get("/a").body == b"y"
    assert (origin.hits("/c/a"), origin.hits("/a")) == (1, 2)


def test_an_upgrade_is_never_answered_from_the_cache(ocsi_memory: Any) -> None:
    srv = ocsi_memory(EXTS + '<host><cache/><counted-app/></host>')
    assert srv.get("/app/u").body == b"count=1"
    assert srv.get("/app/u").body == b"count=1"
    r = srv.get("/app/u", headers={"Connection": "upgrade", "Upgrade": "websocket"})
    assert r.body == b"count=2" and status_of(r) == "fwd=method"


def test_the_age_from_behind_counts(server: Any, origin: Origin) -> None:
    origin.route("/old", headers=fresh(age="100", etag='"o"'), body=b"x")
    origin.route("/young", headers=fresh(age="10"), body=b"y")
    srv = server()
    srv.get("/old")
    assert status_of(srv.get("/old")).startswith("fwd=stale")  # 100 s old, 60 s of life
    srv.get("/young")
    young = srv.get("/young")
    assert status_of(young).startswith("hit") and int(young.headers["age"]) >= 10


def test_default_lifetimes_by_status(server: Any, origin: Origin) -> None:
    origin.route("/moved", status=302, headers={**TEXT, "location": "/x"}, body=b"")
    origin.route("/page", headers=TEXT, body=b"p")
    origin.route("/gone", status=404, headers=TEXT, body=b"g")
    srv = server('default="302 10min; 404 1min"')
    for _ in range(2):
        assert srv.get("/moved").status == 302
        srv.get("/page")
        srv.get("/gone")
    # 302 is stored because it is given a lifetime; 200 has none here
    assert (origin.hits("/moved"), origin.hits("/page"), origin.hits("/gone")) == (1, 2, 1)
    srv = server('default="302 10min; 5min"')
    for _ in range(2):
        srv.get("/page")
    assert origin.hits("/page") == 3


@pytest.mark.parametrize("value, words", [("302 10min; 302 1min", "two lifetimes"),
                                          ("abc 10min", "not a status"), ("", "no lifetime")])
def test_default_errors(ocsi_memory: Any, origin: Origin, value: str, words: str) -> None:
    from ocsi.testing import assert_config_error
    assert_config_error(ocsi_memory, EXTS + f'<host>\n<cache default="{value}"/></host>', words,
                        line=2)


def test_in_front_of_an_asgi_application(ocsi_server: Any) -> None:
    """The ASGI application under ocsi is called once per key; its own count says so."""
    srv = ocsi_server(EXTS + '<extension findlib-package="ocsi-ext-asgi"/>'
                      '<host><cache/><asgi app="counted_asgi:app"/></host>')
    assert [srv.get("/n").body for _ in range(3)] == [b"call 1"] * 3
    for _ in range(2):
        assert srv.get("/vary", {"Accept-Language": "fr"}).body == b"fr"
        assert srv.get("/vary", {"Accept-Language": "de"}).body == b"de"
    assert srv.get("/n").body == b"call 1"  # 3 calls in all: /n, /vary fr, /vary de
    srv.command(f"cache:purge http://127.0.0.1:{srv.port}/n")
    assert srv.get("/n").body == b"call 4"


def test_request_controls_ignored_when_asked(server: Any, origin: Origin) -> None:
    origin.route("/a", headers=fresh(), body=b"x")
    srv = server('requestcontrols="ignore"')
    srv.get("/a")
    for headers in ({"Cache-Control": "no-cache"}, {"Pragma": "no-cache"},
                    {"Cache-Control": "max-age=0"}):
        assert status_of(srv.get("/a", headers)).startswith("hit")
    assert origin.hits("/a") == 1
