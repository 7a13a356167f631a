"""The whole-head fast path (:mod:`ocsi._http.fastrequest`) against the general path.

The general path is h11's parse followed by :func:`~ocsi._http.incoming.parse_head`. On heads
mutated at random (seeded), whenever :func:`read_request` answers, the general path must give
the same request (every field a step can read), the same body framing and keep-alive, or the
same refusal; whatever it declines is the general path's to read.
"""

from __future__ import annotations


import h11
import pytest

from ocsi._http import fasthead
from ocsi._http.fastrequest import read_request
from ocsi._http.incoming import HeadError, parse_head
from ocsi._http.limits import Limits
from ocsi._http.reader import RequestReader

from test_fast_head import HEADS as BASE_HEADS
from test_fast_head import mutated_heads

pytestmark = pytest.mark.skipif(not fasthead.AVAILABLE, reason="httptools is not installed")

HEADS = BASE_HEADS + [
    b"GET /a/../b/./c//d HTTP/1.1\r\nHost: x.example:8080\r\n\r\n",
    b"GET /%2e%2e/etc HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /caf%C3%A9/?q=/./x HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n",
    b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\nUser-Agent: u\r\n\r\n",
    b"GET https://b.example/p?x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n",
    b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
]
LIMITS = Limits(max_request_line=256, max_headers=6)


def _view(got: object) -> object:
    if isinstance(got, HeadError):
        return ("refused", got.status, str(got), got.method, got.target, got.version)
    req, length, expect, keep = got  # type: ignore[misc]
    return (req.method, req.target, req.raw_path, req.query, req.version, list(req.headers),
            req.host, req.host_header, req.raw_segments, req.segments, req.port, req.secure,
            req.client, length, expect, keep)


def _general(head: bytes) -> object:
    reader = RequestReader(64 * 1024, fast=False)
    reader.receive_data(head)
    try:
        ev = reader.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(ev, h11.Request):
        return None
    try:
        return _view(parse_head(ev, LIMITS, 8080, False, "1.2.3.4"))
    except HeadError as exc:
        exc.method, exc.target, exc.version = (ev.method.decode("latin-1"),
                                               ev.target.decode("latin-1"),
                                               ev.http_version.decode("latin-1"))
        return _view(exc)


def _fast(head: bytes) -> object:
    try:
        got = read_request(head, LIMITS, 8080, False, "1.2.3.4")
    except HeadError as exc:
        return _view(exc)
    return None if got is None else _view(got)


@pytest.mark.parametrize("seed", range(8))
def test_whenever_the_fast_path_answers_the_general_path_answers_the_same(seed: int) -> None:
    taken = declined = 0
    for head in mutated_heads(seed, 400, HEADS):
        fast = _fast(head)
        if fast is None:
            declined += 1
            continue
        taken += 1
        assert fast == _general(head), head
    assert taken >= 50 and declined >= 50


@pytest.mark.parametrize("head", HEADS)
def test_the_unmutated_heads(head: bytes) -> None:
    fast = _fast(head)
    assert fast is not None, head
    assert fast == _general(head)


@pytest.mark.parametrize(("head", "status"), [
    (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 7 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET /../x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET http://@/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
])
def test_refusals_match_the_general_path(head: bytes, status: int) -> None:
    fast = _fast(head)
    assert isinstance(fast, tuple) and fast[:2] == ("refused", status), fast
    assert fast == _general(head)
