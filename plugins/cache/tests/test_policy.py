"""RFC 9111's rules as pure functions: directives, lifetimes, ages, ranges and conditions."""

from __future__ import annotations

import ocsi
from ocsi.httputil import format_http_date
from ocsi_ext_cache import policy
from ocsi_ext_cache.ranges import not_modified, single_range

H = ocsi.Headers


def test_cache_control_parsing() -> None:
    cc = policy.cache_control(['max-age=60, private="set-cookie, x-a"', "MAX-AGE=5, no-cache"])
    assert cc == {"max-age": "60", "private": "set-cookie, x-a", "no-cache": None}
    assert policy.field_names(cc["private"]) == ["set-cookie", "x-a"]
    assert policy.seconds(policy.cache_control(["max-age=abc"]), "max-age") == -1
    assert policy.seconds(policy.cache_control(["max-age=99999999999"]), "max-age") == 2**31


def test_lifetimes() -> None:
    now = 1_000_000.0
    assert policy.explicit_lifetime(H([("cache-control", "max-age=10, s-maxage=20")]), now) == 20
    assert policy.explicit_lifetime(H([("cache-control", "max-age=bad")]), now) == 0
    assert policy.explicit_lifetime(H([("expires", format_http_date(now + 30))]), now) == 30
    assert policy.explicit_lifetime(H([("expires", "0")]), now) == 0
    assert policy.explicit_lifetime(H([]), now) is None
    lm = H([("last-modified", format_http_date(now - 1000))])
    assert policy.heuristic_lifetime(lm, now) == 100
    assert policy.heuristic_lifetime(H([("last-modified", format_http_date(now - 10**8))]),
                                     now) == policy.HEURISTIC_MAX


def test_initial_age() -> None:
    headers = H([("age", "30"), ("date", format_http_date(1000))])
    assert policy.initial_age(headers, request_time=1000, response_time=1002) == 32
    assert policy.initial_age(H([("date", format_http_date(900))]), 1000, 1000) == 100


def test_storable() -> None:
    def decide(req: list[tuple[str, str]], resp: list[tuple[str, str]], status: int = 200,
               known: bool = True, cookies: bool = False) -> policy.Decision:
        return policy.storable("GET", status, H(req), H(resp), policy.DEFAULT_STATUSES,
                               lifetime_known=known, store_cookies=cookies)
    assert decide([], [("cache-control", "max-age=1")]).store
    assert decide([], [("cache-control", "no-store")]).reason == "no-store"
    assert decide([], [("cache-control", 'private="x-user"')]).strip == ("x-user",)
    assert decide([], [("cache-control", 'no-cache="set-cookie"'), ("set-cookie", "a=b")]).store
    assert not decide([("authorization", "x")], [("cache-control", "max-age=1")]).store
    assert decide([("authorization", "x")], [("cache-control", "must-revalidate")]).store
    assert not decide([], [], known=False).store
    assert decide([], [("etag", '"x"')], known=False).store
    assert decide([], [], status=206).reason == "status"
    assert decide([], [("vary", "accept, *")]).reason == "vary *"


def test_wants_fresh() -> None:
    assert policy.request_wants_fresh(H([("cache-control", "max-age=0")]))[0]
    assert policy.request_wants_fresh(H([("pragma", "no-cache")]))[0]
    assert not policy.request_wants_fresh(H([("pragma", "no-cache"),
                                            ("cache-control", "max-age=5")]))[0]


def test_ranges_and_conditions() -> None:
    stored = H([("etag", '"a"'), ("last-modified", "Mon, 01 Jan 2001 00:00:00 GMT")])
    assert single_range(H([("range", "bytes=0-0")]), stored, 10) == (0, 0)
    assert single_range(H([("range", "bytes=8-20")]), stored, 10) == (8, 9)
    assert single_range(H([("range", "bytes=-20")]), stored, 10) == (0, 9)
    assert single_range(H([("range", "bytes=10-")]), stored, 10) == "unsatisfiable"
    assert single_range(H([("range", "bytes=5-2")]), stored, 10) is None
    assert single_range(H([("range", "items=1-2")]), stored, 10) is None
    assert single_range(H([("range", "bytes=1-2"), ("if-range", 'W/"a"')]), stored, 10) is None
    assert single_range(H([("range", "bytes=1-2"),
                           ("if-range", "Mon, 01 Jan 2001 00:00:00 GMT")]), stored, 10) == (1, 2)
    assert not_modified(H([("if-none-match", "*")]), stored)
    assert not not_modified(H([("if-none-match", '"b"'),
                               ("if-modified-since", "Tue, 01 Jan 2002 00:00:00 GMT")]), stored)
