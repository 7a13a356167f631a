"""HTTP/2 request header blocks: ocsi's one-pass check against h2's own validation.

``split_request`` replaces h2's inbound validation (turned off in ``H2Protocol`` for its cost),
so it must refuse exactly the blocks h2 refuses and hand on the same fields."""

from __future__ import annotations

import pytest
from h2.exceptions import ProtocolError
from h2.utilities import HeaderValidationFlags, normalize_inbound_headers, validate_headers
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsi.http.h2fields import MalformedRequest, split_request

_REQUEST = HeaderValidationFlags(is_client=False, is_trailer=False, is_response_header=False,
                                 is_push_promise=False)


def _h2(block: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    try:
        return [tuple(f) for f in validate_headers(normalize_inbound_headers(block, _REQUEST),
                                                   _REQUEST)]  # type: ignore[misc]
    except ProtocolError:
        return None


def _ours(block: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    try:
        pseudo, regular = split_request(block)
    except MalformedRequest:
        return None
    return [*pseudo.items(), *((n.encode("latin-1"), v.encode("latin-1")) for n, v in regular)]


_GOOD = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
         (b":authority", b"example.org")]

_NAMES = st.sampled_from([
    b":method", b":scheme", b":path", b":authority", b":status", b":protocol", b":other", b"",
    b"host", b"cookie", b"te", b"connection", b"keep-alive", b"upgrade", b"transfer-encoding",
    b"proxy-connection", b"accept", b"Accept", b"x-a", b" x", b"x\t", b"user-agent"])
_VALUES = st.sampled_from([
    b"", b"GET", b"CONNECT", b"https", b"/", b"example.org", b"other.org", b"trailers",
    b"Trailers", b"gzip", b" a", b"a ", b"a\t", b"\x0ba", b"a=1", b"b=2", b"x y"])


@settings(max_examples=3000, derandomize=True, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=8), st.integers(0, 4))
def test_the_same_blocks_are_refused_and_the_same_fields_kept(extra, keep) -> None:  # type: ignore[no-untyped-def]
    block = _GOOD[:keep] + extra
    theirs = _h2(block)
    ours = _ours(block)
    assert (ours is None) == (theirs is None), block
    if ours is not None:
        assert sorted(ours) == sorted(theirs or []), block


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
])
def test_malformed_blocks(block) -> None:  # type: ignore[no-untyped-def]
    assert _h2(block) is None
    with pytest.raises(MalformedRequest):
        split_request(block)


def test_cookies_are_joined_as_h2_joins_them() -> None:
    _, regular = split_request(_GOOD + [(b"cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2")])
    assert regular == [("x", "y"), ("cookie", "a=1; b=2")]
