"""Compression round trips around buffer and read-size boundaries; bounded pieces; closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from deflate_content import file_body, payload, stream_body
from ocsi import Body, BytesBody, FileBody
from ocsi.testing import decode_content as decode
from ocsi_ext_deflatemod.codecs import AVAILABLE, encoder
from ocsi_ext_deflatemod.stream import compressed_chunks

BUF = 8192
SIZES = sorted({0, 1, 255, 256, 257, BUF - 1, BUF, BUF + 1, 2 * BUF - 1, 2 * BUF, 2 * BUF + 1,
                65535, 65536, 65537, FileBody.CHUNK - 1, FileBody.CHUNK, FileBody.CHUNK + 1})


async def collect(body: Body, coding: str, buf: int = BUF, level: int = 6) -> list[bytes]:
    return [c async for c in compressed_chunks(body, encoder(coding, level), buf)]


@pytest.mark.parametrize("coding", AVAILABLE)
@pytest.mark.parametrize("kind", ["bytes", "file", "stream"])
def test_round_trip_around_boundaries(coding: str, kind: str) -> None:
    async def go() -> None:
        for size in SIZES:
            data = payload(size, seed=size)
            if kind == "bytes":
                body: Body = BytesBody(data)
            elif kind == "file":
                body = file_body(data)
            else:
                body = stream_body(data, 1000, known=False)
            pieces = await collect(body, coding)
            assert decode(coding, b"".join(pieces)) == data, (coding, kind, size)
    asyncio.run(go())


@pytest.mark.parametrize("buf", [1, 7, 1024, 8192, 100_000])
def test_buffer_sizes(buf: int) -> None:
    data = payload(70_000, seed=3)
    pieces = asyncio.run(collect(stream_body(data, 4096, known=True), "gzip", buf))
    assert decode("gzip", b"".join(pieces)) == data


@pytest.mark.parametrize("coding", AVAILABLE)
def test_output_pieces_are_bounded(coding: str) -> None:
    """Big input in big chunks: the output still comes in pieces of about one buffer."""
    data = payload(1_000_000, seed=9)
    pieces = asyncio.run(collect(stream_body(data, FileBody.CHUNK, known=True), coding, BUF, level=1))
    assert decode(coding, b"".join(pieces)) == data
    assert len(pieces) > 3
    assert all(len(p) >= BUF for p in pieces[:-1])
    assert max(len(p) for p in pieces) <= BUF + 128 * 1024


class Tracked(Body):
    """A body that records whether it was closed, optionally failing after some chunks."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self._chunks = chunks
        self.fail_after = fail_after
        self.closed = 0
        self.length = None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        for i, c in enumerate(self._chunks):
            if self.fail_after is not None and i >= self.fail_after:
                raise OSError("upstream broke")
            yield c

    async def aclose(self) -> None:
        self.closed += 1


def test_source_closed_at_end() -> None:
    src = Tracked([payload(50_000)] * 3)
    asyncio.run(collect(src, "gzip"))
    assert src.closed == 1


def test_source_closed_on_error() -> None:
    src = Tracked([payload(50_000)] * 3, fail_after=1)
    with pytest.raises(OSError):
        asyncio.run(collect(src, "gzip"))
    assert src.closed == 1


def test_source_closed_when_consumer_stops_early() -> None:
    async def go(src: Tracked) -> None:
        gen = compressed_chunks(src, encoder("gzip", 6), 1024)
        await gen.__anext__()
        await gen.aclose()
    src = Tracked([payload(50_000)] * 3)
    asyncio.run(go(src))
    assert src.closed == 1
