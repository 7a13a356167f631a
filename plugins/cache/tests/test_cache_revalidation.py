"""Revalidation with the validators held, stale-while-revalidate, stale-if-error, and the
coalescing of concurrent misses, each shown by what the origin receives."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from origin import Origin, proxied, status_of, until

TEXT = {"content-type": "text/plain"}


def conditional(etag: str, body: bytes, cc: str = "max-age=0") -> Any:
    """An origin answering 304 to a request that holds ``etag``."""
    def answer(method: str, path: str, headers: dict[str, str]) -> Any:
        h = {**TEXT, "cache-control": cc, "etag": etag}
        if headers.get("if-none-match") == etag:
            return 304, {"cache-control": cc, "etag": etag, "x-refreshed": "yes"}, b""
        return 200, h, body
    return answer


def test_a_304_refreshes_the_entry(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", handler=conditional('"v1"', b"body one"))
    srv = ocsi_server(proxied(origin))
    first = srv.get("/a")
    assert first.body == b"body one" and status_of(first).endswith("stored")
    second = srv.get("/a")
    assert second.status == 200 and second.body == b"body one"
    assert status_of(second).startswith("fwd=stale; fwd-status=304")
    assert second.headers["x-refreshed"] == "yes"  # the 304's fields update the entry
    assert origin.seen[1][2]["if-none-match"] == '"v1"'
    assert origin.hits("/a") == 2


def test_a_304_then_fresh_for_its_new_lifetime(ocsi_server: Any, origin: Origin) -> None:
    calls = []

    def answer(method: str, path: str, headers: dict[str, str]) -> Any:
        calls.append(headers.get("if-modified-since"))
        if headers.get("if-modified-since"):
            return 304, {"cache-control": "max-age=60"}, b""
        return 200, {**TEXT, "cache-control": "max-age=0",
                     "last-modified": "Mon, 01 Jan 2001 00:00:00 GMT"}, b"x" * 500_000
    origin.route("/a", handler=answer)
    srv = ocsi_server(proxied(origin, 'memoryentry="64KiB"'))  # a file entry, copied on refresh
    srv.get("/a")
    assert srv.get("/a").body == b"x" * 500_000
    third = srv.get("/a")
    assert status_of(third).startswith("hit") and third.body == b"x" * 500_000
    assert calls == [None, "Mon, 01 Jan 2001 00:00:00 GMT"]


def test_a_changed_answer_replaces_the_entry(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", handler=conditional('"v1"', b"one"))
    srv = ocsi_server(proxied(origin))
    srv.get("/a")
    origin.route("/a", handler=conditional('"v2"', b"two"))
    r = srv.get("/a")
    assert r.body == b"two" and status_of(r) == "fwd=stale; fwd-status=200; stored"
    assert srv.get("/a").body == b"two"


def test_stale_while_revalidate_answers_at_once_and_updates_behind(ocsi_server: Any,
                                                                   origin: Origin) -> None:
    version = {"n": 1}

    def answer(method: str, path: str, headers: dict[str, str]) -> Any:
        return 200, {**TEXT, "cache-control": "max-age=0, stale-while-revalidate=600"}, \
            f"v{version['n']}".encode()
    origin.route("/a", handler=answer)
    srv = ocsi_server(proxied(origin))
    assert srv.get("/a").body == b"v1"
    version["n"] = 2
    stale = srv.get("/a")
    assert stale.body == b"v1" and "stale-while-revalidate" in status_of(stale)
    assert until(lambda: origin.hits("/a") == 2)
    assert until(lambda: srv.get("/a").body == b"v2")  # the background answer was stored


def test_stale_while_revalidate_from_the_attribute(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", headers={**TEXT, "cache-control": "max-age=0", "etag": '"e"'}, body=b"x")
    srv = ocsi_server(proxied(origin, 'stale-while-revalidate="10min"'))
    srv.get("/a")
    assert "stale-while-revalidate" in status_of(srv.get("/a"))
    assert until(lambda: origin.hits("/a") == 2)


def test_must_revalidate_is_never_served_stale(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", headers={**TEXT, "cache-control": "max-age=0, must-revalidate",
                                "etag": '"e"'}, body=b"x")
    srv = ocsi_server(proxied(origin, 'stale-while-revalidate="10min" stale-if-error="10min"'))
    srv.get("/a")
    assert status_of(srv.get("/a")).startswith("fwd=stale")
    origin.route("/a", status=503, headers=TEXT, body=b"down")
    assert srv.get("/a").status == 503


def test_stale_if_error_on_an_error_status(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", headers={**TEXT, "cache-control": "max-age=0, stale-if-error=600",
                                "etag": '"e"'}, body=b"good")
    srv = ocsi_server(proxied(origin))
    srv.get("/a")
    origin.route("/a", status=503, headers=TEXT, body=b"down")
    r = srv.get("/a")
    assert (r.status, r.body) == (200, b"good")
    assert status_of(r) == "fwd=stale; fwd-status=503; detail=stale-if-error"


def test_stale_if_error_when_the_origin_is_gone(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", headers={**TEXT, "cache-control": "max-age=0", "etag": '"e"'},
                 body=b"good")
    srv = ocsi_server(proxied(origin, 'stale-if-error="1h"'))
    srv.get("/a")
    origin.stop()  # connections refused: the proxy answers 502
    r = srv.get("/a")
    assert (r.status, r.body) == (200, b"good") and "stale-if-error" in status_of(r)


def test_without_stale_if_error_the_error_passes(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", headers={**TEXT, "cache-control": "max-age=0", "etag": '"e"'}, body=b"x")
    srv = ocsi_server(proxied(origin))
    srv.get("/a")
    origin.route("/a", status=503, headers=TEXT, body=b"down")
    assert srv.get("/a").status == 503


def test_concurrent_misses_make_one_request_behind(ocsi_server: Any, origin: Origin) -> None:
    """Twelve real clients at once on a slow page: the origin answers once; the others wait
    for the entry (``collapsed``) or arrive after it (a plain hit)."""
    release = threading.Event()

    def slow(method: str, path: str, headers: dict[str, str]) -> Any:
        release.wait(30)
        return 200, {**TEXT, "cache-control": "max-age=60"}, b"slow page" * 1000
    origin.route("/slow", handler=slow)
    srv = ocsi_server(proxied(origin))
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(srv.get, "/slow", None, timeout=60) for _ in range(12)]
        assert until(lambda: origin.hits("/slow") >= 1)
        release.set()
        results = [f.result() for f in futures]
    assert origin.hits("/slow") == 1
    assert {r.body for r in results} == {b"slow page" * 1000}
    statuses = [status_of(r) for r in results]
    assert sum(s.endswith("stored") for s in statuses) == 1
    assert all(s.startswith("hit") for s in statuses if not s.endswith("stored"))
    assert any("collapsed" in s for s in statuses)


def test_waiters_go_behind_when_the_answer_is_not_stored(ocsi_server: Any,
                                                        origin: Origin) -> None:
    release = threading.Event()

    def slow(method: str, path: str, headers: dict[str, str]) -> Any:
        release.wait(30)
        return 200, {**TEXT, "cache-control": "private"}, b"mine"
    origin.route("/p", handler=slow)
    srv = ocsi_server(proxied(origin))
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(srv.get, "/p", None, timeout=60) for _ in range(4)]
        assert until(lambda: origin.hits("/p") >= 1)
        release.set()
        assert [f.result().body for f in futures] == [b"mine"] * 4
    assert origin.hits("/p") == 4


def test_lock_timeout_lets_waiters_go(ocsi_server: Any, origin: Origin) -> None:
    release = threading.Event()

    def slow(method: str, path: str, headers: dict[str, str]) -> Any:
        if origin.hits("/s") == 1:
            release.wait(30)
        return 200, {**TEXT, "cache-control": "max-age=60"}, b"s"
    origin.route("/s", handler=slow)
    srv = ocsi_server(proxied(origin, 'locktimeout="200ms"'))
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(srv.get, "/s", None, timeout=60)
        assert until(lambda: origin.hits("/s") == 1)
        second = srv.get("/s", timeout=30)  # waits 200 ms, then goes behind itself
        assert second.body == b"s" and origin.hits("/s") == 2
        release.set()
        assert first.result().body == b"s"


def test_a_variant_being_fetched_does_not_hold_the_others(ocsi_server: Any,
                                                          origin: Origin) -> None:
    """With Vary, requests wait only for the same variant: while the ``br`` one is held behind
    (with a lock timeout of a minute), a ``zstd`` one is answered."""
    release = threading.Event()

    def by_encoding(method: str, path: str, headers: dict[str, str]) -> Any:
        enc = headers.get("accept-encoding", "")
        if enc == "br":
            release.wait(30)
        return 200, {**TEXT, "cache-control": "max-age=60", "vary": "accept-encoding"}, \
            enc.encode()
    origin.route("/v", handler=by_encoding)
    srv = ocsi_server(proxied(origin, 'locktimeout="60s"'))
    assert srv.get("/v", {"Accept-Encoding": "gzip"}).body == b"gzip"
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(srv.get, "/v", {"Accept-Encoding": "br"}, timeout=60)
        assert until(lambda: origin.hits("/v") == 2)
        other = srv.get("/v", {"Accept-Encoding": "zstd"}, timeout=20)
        assert other.body == b"zstd" and not held.done()
        release.set()
        assert held.result().body == b"br"
