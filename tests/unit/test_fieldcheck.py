"""The request-head rules every protocol shares (:mod:`ocsi._http.fieldcheck`), byte by byte
against h11's grammar, which reads HTTP/1.1 heads: the two must take the same methods, targets
and names, and fieldcheck must be the stricter one on values (RFC 9110 §5.5)."""

from __future__ import annotations

import h11
import pytest

from ocsi._http import fasthead
from ocsi._http.fieldcheck import request_head_problem, target_ok_bytes, value_problem

BYTES = [bytes([b]) for b in range(256)]


def _h11_takes(head: bytes) -> bool:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    try:
        return type(conn.next_event()) is h11.Request
    except h11.RemoteProtocolError:
        return False


def _ours(method: bytes = b"GET", target: bytes = b"/", name: bytes = b"x", value: bytes = b"v"
          ) -> bool:
    return request_head_problem(method.decode("latin-1"), target.decode("latin-1"),
                                [("host", "h"), (name.decode("latin-1"), value.decode("latin-1"))]
                                ) is None


@pytest.mark.parametrize("byte", BYTES, ids=lambda b: b.hex())
def test_methods_targets_and_names_as_h11_reads_them(byte: bytes) -> None:
    if byte not in (b" ", b"\r", b"\n"):  # these split the line before the grammar applies
        assert _ours(method=b"G" + byte + b"T") == _h11_takes(b"G%bT / HTTP/1.1\r\nHost: h\r\n\r\n" % byte)
        assert _ours(target=b"/a" + byte) == _h11_takes(b"GET /a%b HTTP/1.1\r\nHost: h\r\n\r\n" % byte)
        assert _ours(target=b"/a" + byte) == (target_ok_bytes(b"/a" + byte) is not None)
    if byte not in (b":", b"\r", b"\n"):
        assert _ours(name=b"x" + byte) == _h11_takes(b"GET / HTTP/1.1\r\nHost: h\r\nx%b: v\r\n\r\n" % byte)


@pytest.mark.parametrize("byte", BYTES, ids=lambda b: b.hex())
def test_values_without_control_characters(byte: bytes) -> None:
    allowed = byte == b"\t" or 0x20 <= byte[0] <= 0x7e or byte[0] >= 0x80
    assert _ours(value=b"a" + byte + b"b") == allowed
    if allowed:  # h11 takes every value fieldcheck takes
        assert _h11_takes(b"GET / HTTP/1.1\r\nHost: h\r\nx: a%bb\r\n\r\n" % byte)
    if fasthead.AVAILABLE:  # llhttp takes exactly these: parse_head checks only h11's heads
        head = b"GET / HTTP/1.1\r\nHost: h\r\nx: a%bb\r\n\r\n" % byte
        assert (fasthead.parse_canonical_head(head) is not None) == allowed


def test_the_issues_shapes_are_refused_with_a_reason_safe_for_a_log() -> None:
    problem = request_head_problem("GET /admin/secret HTTP/1.1\x0b", "/x", [])
    assert problem is not None and "\x0b" not in problem and "\\x0b" in problem
    for target in ("/x\x0b/a", "/x\x0c", "/x\x7f", "/x y", "/\xe9", ""):
        assert request_head_problem("GET", target, []) is not None, target
    assert request_head_problem("GET", "*", []) is not None
    assert request_head_problem("OPTIONS", "*", []) is None
    assert "not a token" in (request_head_problem("GET", "/", [('x(a)"/', "v")]) or "")
    assert request_head_problem("GET", "/", [("X-A", "v")]) is None
    assert "lower-case" in (request_head_problem("GET", "/", [("X-A", "v")], pseudo=True) or "")
    assert request_head_problem("GET", "http://h/x", []) is None  # absolute-form, HTTP/1.1
    assert request_head_problem("GET", "http://h/x", [], pseudo=True) is not None  # :path
    assert request_head_problem("OPTIONS", "*", [], pseudo=True) is None
    assert request_head_problem("GET", "/", [("x", "é\tok \xff")]) is None
    assert request_head_problem("GET", "/", [("x", "\u0100")]) is not None  # not latin-1
    assert value_problem([("a", "ok"), ("b", "x\x01")]) == "character '\\x01' in the value of field 'b'"
    assert value_problem([]) is None
