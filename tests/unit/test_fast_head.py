"""The httptools fast path for request heads (:mod:`ocsi._http.fasthead`) against h11.

The differential test mutates valid heads at random (seeded) and checks the rule the fast path
stands on: whenever it answers, h11 accepts the same bytes and reads the same method, target,
version and fields; whatever it declines is left whole in the buffer for h11.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import h11
import pytest

from ocsi._http import fasthead
from ocsi._http.fasthead import FastHead, parse_canonical_head
from ocsi._http.reader import RequestReader

pytestmark = pytest.mark.skipif(not fasthead.AVAILABLE, reason="httptools is not installed")

HEADS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x/y%20z?q=1 HTTP/1.1\r\nHost: a:80\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HEAD / HTTP/1.0\r\n\r\n",
    b"GET http://a/abs HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces:   v  \r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nX: \xffy\r\n\r\n",
    b"GET /a?b=c&d#f HTTP/1.1\r\nHost:\r\nContent-Length: 5 \r\n\r\n",
]
SPECIAL = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"  ", b"\t", b"Chunked", b"CHUNKED", b":", b"\x7f", b"\xff", b"\x0b", b"\x0c",
           b"Content-Length: 3\r\n", b"Content-Length: +3\r\n", b"Transfer-Encoding: gzip\r\n",
           b"Transfer-Encoding: chunked\r\n", b"Host: b\r\n", b"HTTP/1.1", b"HTTP/2.0", b"-1",
           b"\r\n ", b"\r\n\t", b"x:y\r\n", b" :", b"\xc3\xa9"]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data[:-2])  # keep the final blank line: the fast path needs a whole head
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(b) + 1)
        op = rng.randrange(4)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[pos:pos] = rng.choice(SPECIAL)
        elif op == 2 and b:
            del b[pos:pos + rng.randint(1, 6)]
        else:
            lines = bytes(b).split(b"\r\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            b = bytearray(b"\r\n".join(lines))
    return bytes(b) + b"\r\n"


def mutated_heads(seed: int, count: int, heads: list[bytes] = HEADS) -> Iterator[bytes]:
    """Up to ``count`` heads of ``heads`` mutated (seeded), each cut after its first blank
    line (those the mutation left without one are skipped)."""
    rng = random.Random(seed)
    for _ in range(count):
        data = _mutate(rng, rng.choice(heads))
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            yield data[:end + 4]


def _h11(data: bytes) -> object:
    reader = RequestReader(64 * 1024, fast=False)
    reader.receive_data(data)
    try:
        return reader.next_event()
    except h11.RemoteProtocolError as exc:
        return exc


def _fields(ev: h11.Request) -> list[tuple[bytes, bytes, bytes]]:
    return list(ev.headers._full_items)  # noqa: SLF001 - h11's own triples


@pytest.mark.parametrize("seed", range(6))
def test_whenever_the_fast_path_answers_h11_reads_the_same(seed: int) -> None:
    taken = declined = 0
    for head in mutated_heads(seed, 400):
        fast = parse_canonical_head(head)
        if fast is None:
            declined += 1
            continue
        taken += 1
        ref = _h11(head)
        assert isinstance(ref, h11.Request), (head, ref)
        assert (fast.method, fast.target, fast.http_version) == \
            (ref.method, ref.target, ref.http_version), head
        assert fast.headers == _fields(ref), head
    assert taken >= 20 and declined >= 100  # both sides of the gate are exercised


def test_the_unmutated_heads_take_the_fast_path_with_h11s_fields() -> None:
    for head in HEADS:
        fast = parse_canonical_head(head)
        ref = _h11(head)
        assert fast is not None and isinstance(ref, h11.Request)
        assert fast.headers == _fields(ref) and fast.target == ref.target


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",  # a bare LF
    b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n",  # obsolete folding
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # a leading empty line
    b"GET / HTTP/1.1\r\nX: y\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",  # not visible ASCII
    b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n",  # a method llhttp does not know
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",  # two spaces: llhttp takes it, h11 does not
    b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
])
def test_shapes_left_to_h11(head: bytes) -> None:
    assert parse_canonical_head(head) is None
    reader = RequestReader(64 * 1024, fast=True)
    reader.receive_data(head)
    try:
        ev = reader.next_event()
    except h11.RemoteProtocolError:
        return  # h11's answer, as without the fast path
    assert not isinstance(ev, FastHead)


def test_the_reader_takes_the_head_and_leaves_the_body_and_the_next_request() -> None:
    reader = RequestReader(64 * 1024, fast=True)
    reader.receive_data(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\n"
                        b"Host: a\r\n\r\n")
    head = reader.next_event()
    assert isinstance(head, FastHead) and head.target == b"/p"
    reader.start_body(5)
    data = reader.next_event()
    assert isinstance(data, h11.Data) and data.data == b"hello"
    assert isinstance(reader.next_event(), h11.EndOfMessage)
    reader.start_next_cycle(64 * 1024)
    second = reader.next_event()
    assert isinstance(second, FastHead) and second.target == b"/2"


def test_the_directive_chooses_for_the_server(ocsi_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OCSI_HTTP_PARSER", raising=False)
    srv = ocsi_server("<httpparser>httptools</httpparser><host/>")
    assert srv.server.manager.limits.fast_parser
    assert srv.get("/nothing-here").status == 404
    default = ocsi_server("<host/>")  # httptools is installed here: the default
    assert default.server.manager.limits.fast_parser
    reference = ocsi_server("<httpparser>h11</httpparser><host/>")
    assert not reference.server.manager.limits.fast_parser
    assert reference.get("/nothing-here").status == 404


def test_a_head_arriving_a_byte_at_a_time() -> None:
    head = b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Long: " + b"v" * 2000 + b"\r\n\r\n"
    reader = RequestReader(64 * 1024, fast=True)
    for i in range(len(head) - 1):
        reader.receive_data(head[i:i + 1])
        assert reader.next_event() is h11.NEED_DATA
    reader.receive_data(head[-1:])
    ev = reader.next_event()
    assert isinstance(ev, FastHead) and ev.target == b"/slow"
