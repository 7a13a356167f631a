"""HTTP/2 request header blocks: ocsi's one-pass check against h2's own validation.

``split_request`` replaces h2's inbound validation (turned off in ``H2Protocol`` for its cost).
With the character rules every request is then held to (``fieldcheck``, a 400), it must refuse
whatever h2 refuses; by itself it must refuse nothing h2 takes, and hand on the same fields."""

from __future__ import annotations

import pytest
from h2.exceptions import ProtocolError
from h2.utilities import HeaderValidationFlags, normalize_inbound_headers, validate_headers
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsi._http.fieldcheck import request_head_problem
from ocsi._http.h2fields import MalformedRequest, split_request

_REQUEST = HeaderValidationFlags(is_client=False, is_trailer=False, is_response_header=False,
                                 is_push_promise=False)


def _h2(block: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    try:
        return [tuple(f) for f in validate_headers(normalize_inbound_headers(block, _REQUEST),
                                                   _REQUEST)]  # type: ignore[misc]  # h2 yields HeaderTuple
    except ProtocolError:
        return None


def _ours(block: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    try:
        pseudo, regular = split_request(block)
    except MalformedRequest:
        return None
    return [*pseudo.items(), *((n.encode("latin-1"), v.encode("latin-1")) for n, v in regular)]


def _characters_refused(block: list[tuple[bytes, bytes]]) -> bool:
    """What the connection applies after ``split_request`` (a 400): the character rules."""
    fields = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in block if n[:1] != b":"]
    return request_head_problem("GET", "/", fields, pseudo=True) is not None


_BASES = [
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
     (b":authority", b"example.org")],
    [(b":method", b"CONNECT"), (b":authority", b"example.org:443")],
    [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
     (b":path", b"/chat"), (b":authority", b"example.org")],
]
_GOOD = _BASES[0]

_NAMES = st.sampled_from([
    b":method", b":scheme", b":path", b":authority", b":status", b":protocol", b":other", b"",
    b"host", b"cookie", b"te", b"connection", b"keep-alive", b"upgrade", b"transfer-encoding",
    b"proxy-connection", b"accept", b"Accept", b"x-a", b" x", b"x\t", b"user-agent", b"x:y",
    b"x\x00", b"\xffx", b"a(b", b"x y"])
_VALUES = st.sampled_from([
    b"", b"GET", b"CONNECT", b"https", b"/", b"example.org", b"other.org", b"trailers",
    b"Trailers", b"gzip", b" a", b"a ", b"a\t", b"\x0ba", b"a=1", b"b=2", b"x y", b"a\x00b",
    b"a\rb", b"\x01", b"websocket"])


@settings(max_examples=4000, derandomize=True, deadline=None)
@given(st.sampled_from(_BASES), st.integers(0, 5), st.lists(st.tuples(_NAMES, _VALUES), max_size=6))
def test_what_h2_refuses_is_refused_and_nothing_more_by_the_block_rules(base, keep, extra) -> None:  # type: ignore[no-untyped-def]
    block = base[:keep] + extra
    theirs = _h2(block)
    ours = _ours(block)
    if theirs is None:  # refused by h2: by the block rules here, or by the character rules
        assert ours is None or _characters_refused(block), block
    else:  # taken by h2: the block rules take it too, with the same fields
        assert ours is not None, block
        assert sorted(ours) == sorted(theirs), block


@pytest.mark.parametrize("block", [
    _GOOD + [(b"Accept", b"*/*")],
    _GOOD + [(b"connection", b"close")],
    _GOOD + [(b"te", b"gzip")],
    _GOOD + [(b"x", b" padded")],
    [(b":method", b"GET"), (b"x", b"1"), (b":scheme", b"https"), (b":path", b"/"),
     (b":authority", b"a")],
    _GOOD + [(b":path", b"/again")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b""), (b":authority", b"a")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")],
    _GOOD + [(b"host", b"other.org")],
    _GOOD + [(b"host", b"example.org"), (b"host", b"example.org")],
    [(b":method", b"CONNECT"), (b":authority", b"a:443"), (b":path", b"/")],
    [(b":method", b"GET"), (b":protocol", b"websocket"), (b":scheme", b"https"), (b":path", b"/"),
     (b":authority", b"a")],
])
def test_malformed_blocks(block) -> None:  # type: ignore[no-untyped-def]
    assert _h2(block) is None
    with pytest.raises(MalformedRequest):
        split_request(block)


def test_a_plain_connect_has_no_path() -> None:
    pseudo, _ = split_request([(b":method", b"CONNECT"), (b":authority", b"a:443")])
    assert pseudo == {b":method": b"CONNECT", b":authority": b"a:443"}


def test_cookies_are_joined_as_h2_joins_them() -> None:
    _, regular = split_request(_GOOD + [(b"cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2")])
    assert regular == [("x", "y"), ("cookie", "a=1; b=2")]
