"""Bodies and pipelined sequences, against h11 as the reference (property-based, hypothesis).

The mutation test (test_http_fuzz.py) and the head differential (tests/unit/test_fast_head.py)
cover request heads; this one covers what follows them. A sequence of one to four requests is
written on one connection at once: bodies by ``Content-Length`` (leading zeros, repeated equal
values) or chunked (sizes in upper and lower case hex with leading zeros, chunk extensions
with tokens and quoted strings, trailer fields), sometimes broken (a size that lies, a bad hex
digit, a missing CRLF, a bare LF, a trailer line without a colon, a size too large to ever
arrive), then the client half-closes.

``h11.Connection`` reads the same bytes and says, request after request, what each one is
(method, target, body) and how the sequence ends: cleanly, at a malformed message, or cut
short. The server (each head parser, h11 and httptools) must answer every request h11 read
completely, in order, with exactly that request (an echo of method, target and body), and
after that: nothing more when the sequence was clean; a 4xx or a close, never a 200, at the
message h11 refused.
"""

from __future__ import annotations

import hashlib
import re
import socket
import sys
from pathlib import Path

import h11
from hypothesis import given
from hypothesis import strategies as st

from ocsi import BytesBody, Response

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from fuzz_settings import budget  # noqa: E402 - the shared hypothesis profiles of tests/fuzz

STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


def digest(method: str, target: str, body: bytes) -> bytes:
    return f"{method} {target} {len(body)} {hashlib.sha1(body).hexdigest()[:16]}".encode()


async def echo(request):  # type: ignore[no-untyped-def]
    body = await request.body.read()
    return Response(200, [("content-type", "text/plain")],
                    BytesBody(digest(request.method, request.target, body)))


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    out = b""
    rest = body
    while rest:
        n = draw(st.integers(1, max(1, len(rest))))
        piece, rest = rest[:n], rest[n:]
        out += size_line(draw, len(piece)) + piece + b"\r\n"
    out += size_line(draw, 0)
    for _ in range(draw(st.integers(0, 2))):
        out += draw(st.sampled_from([b"X-Trailer: v", b"X-Sum: 1, 2", b"Empty:", b"Expires: never"])) + b"\r\n"
    return out + b"\r\n"


def size_line(draw: st.DrawFn, n: int) -> bytes:
    digits = draw(st.sampled_from(["{:x}", "{:X}", "{:04x}", "{:010X}"])).format(n).encode()
    ext = draw(st.sampled_from([b"", b"", b";a", b";a=b", b';name="quoted value"', b";a=b;c=d",
                                b" ;a=b", b";a=b ", b"; a = b"]))
    return digits + ext + b"\r\n"


BREAKS = [
    (rb"\r\n0\r\n", b"\r\n1\r\n"),  # the last-chunk size lies: 1 byte is expected
    (rb"^[0-9a-fA-F]+", b"g"),  # a bad hex digit in the first size
    (rb"^[0-9a-fA-F]+", b"-1"),
    (rb"^[0-9a-fA-F]+", b"ffffffffffffffffffff"),  # far more than will ever arrive
    (rb"\r\n", b"\n"),  # a bare LF
    (rb"\r\n\r\n$", b"\r\n"),  # the end of the trailers missing
    (rb"X-Trailer: v", b"no colon"),
    (rb"\r\n", b""),  # a CRLF missing
]


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Bytes of one request, and whether it was deliberately broken."""
    method = draw(st.sampled_from(["POST", "PUT", "GET", "DELETE"]))
    target = draw(st.sampled_from(["/", "/a", "/b?x=1", "/c%20d"]))
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["none", "length", "length0", "lengthtwice", "chunked", "chunked"]))
    head = f"{method} {target} HTTP/1.1\r\nHost: a\r\n".encode()
    broken = False
    if framing == "none" or (framing.startswith("length") and not body and framing != "length0"):
        data = head + b"\r\n"
    elif framing == "chunked":
        encoded = draw(chunked(body))
        if draw(st.integers(0, 4)) == 0:
            pattern, repl = draw(st.sampled_from(BREAKS))
            encoded, n = re.subn(pattern, repl, encoded, count=1)
            broken = n > 0
        data = head + b"Transfer-Encoding: chunked\r\n\r\n" + encoded
    else:
        length = draw(st.sampled_from(["{}", "{:05d}"])).format(len(body)).encode()
        fields = b"Content-Length: " + length + b"\r\n"
        if framing == "lengthtwice":
            fields += fields
        data = head + fields + b"\r\n" + body
    return data, broken


def reference(data: bytes) -> tuple[list[bytes], str]:
    """What h11 reads from ``data`` then EOF: the digests of the complete requests, and how the
    sequence ends (``clean``, ``error``; a request cut short is an ``error`` too)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    done: list[bytes] = []
    current: h11.Request | None = None
    body = b""
    while True:
        try:
            ev = conn.next_event()
        except h11.RemoteProtocolError:
            return done, "error"
        if isinstance(ev, h11.Request):
            current, body = ev, b""
        elif isinstance(ev, h11.Data):
            body += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            assert current is not None
            done.append(digest(current.method.decode(), current.target.decode(), body))
            conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return done, "clean"  # the request asked to close
            conn.start_next_cycle()
        else:  # ConnectionClosed (NEED_DATA cannot happen after EOF)
            return done, "clean"


def exchange(port: int, data: bytes) -> list[tuple[int, bytes]]:
    """Send everything, half-close, read to the end: the responses (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking everything
        raw = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
    out = []
    i = 0
    while i < len(raw):
        m = STATUS.match(raw, i)
        assert m, raw[i:i + 200]
        end = raw.index(b"\r\n\r\n", i) + 4
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", raw[i:end])
        assert length, raw[i:end]
        n = int(length.group(1))
        out.append((int(m.group(1)), raw[end:end + n]))
        i = end + n
    return out


def test_bodies_and_pipelined_sequences_read_as_h11_reads_them(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(echo)
    ends: dict[str, int] = {}

    @budget(200)
    @given(st.lists(requests(), min_size=1, max_size=4))
    def sequence(reqs: list[tuple[bytes, bool]]) -> None:
        data = b"".join(r for r, _ in reqs)
        expected, end = reference(data)
        answers = exchange(srv.port, data)
        ok = [body for status, body in answers[:len(expected)] if status == 200]
        assert ok == expected, (data, answers, expected, end)
        extra = answers[len(expected):]
        if end == "clean":
            assert not extra, (data, answers)
        else:
            assert all(400 <= status < 500 for status, _ in extra[:1]), (data, answers)
            assert len(extra) <= 1, (data, answers)
        ends[end] = ends.get(end, 0) + 1

    sequence()
    assert ends.get("clean", 0) >= 20 and ends.get("error", 0) >= 20, ends
