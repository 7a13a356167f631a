"""The compressed-file cache's own logic: keys, the byte budget, least recently used first,
and nothing kept from a stream that did not finish."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from ocsi import FileBody
from ocsi_ext_deflatemod import CompressedCache


def _body(path: Path, offset: int = 0, length: int | None = None) -> FileBody:
    size = path.stat().st_size
    return FileBody(os.open(path, os.O_RDONLY), offset, size - offset if length is None else length)


def test_keys_name_the_whole_file_its_coding_and_level(tmp_path: Path) -> None:
    f = tmp_path / "a.html"
    f.write_bytes(b"a" * 1000)
    os.utime(f, (1e9, 1e9))
    cache = CompressedCache(budget=10_000, max_file=5000)
    whole = _body(f)
    key = cache.key(whole, "gzip", 6)
    assert key is not None and key[-2:] == ("gzip", 6)
    assert cache.key(whole, "br", 6) != key and cache.key(whole, "gzip", 9) != key
    part = _body(f, 10)
    assert cache.key(part, "gzip", 6) is None  # a byte range
    f.write_bytes(b"b" * 6000)
    os.utime(f, (1e9, 1e9))
    big = _body(f)
    assert cache.key(big, "gzip", 6) is None  # over max_file
    off = CompressedCache(budget=0)
    assert off.key(big, "gzip", 6) is None
    f.write_bytes(b"c" * 1000)  # just written: not kept until it is older than RACY
    fresh = _body(f)
    assert cache.key(fresh, "gzip", 6) is None
    for b in (whole, part, big, fresh):
        b.close()


def test_the_budget_drops_the_least_recently_used() -> None:
    cache = CompressedCache(budget=100)
    keys = [(0, i, 0, 0, "gzip", 6) for i in range(4)]
    cache.put(keys[0], b"x" * 40)
    cache.put(keys[1], b"x" * 40)
    assert cache.get(keys[0]) is not None  # 0 is now the most recent
    cache.put(keys[2], b"x" * 40)  # 1 goes
    assert cache.get(keys[1]) is None and cache.get(keys[0]) and cache.get(keys[2])
    assert cache.size == 80 and len(cache) == 2
    cache.put(keys[3], b"x" * 101)  # larger than the whole budget: not kept
    assert cache.get(keys[3]) is None and cache.size == 80
    cache.clear()
    assert cache.size == 0 and len(cache) == 0


def test_a_stream_that_stops_early_keeps_nothing() -> None:
    async def source() -> AsyncIterator[bytes]:
        for piece in (b"a", b"b", b"c"):
            yield piece

    async def run() -> tuple[bytes | None, bytes | None]:
        cache = CompressedCache()
        cut, whole = (1, 1, 1, 1, "gzip", 6), (2, 2, 2, 2, "gzip", 6)
        gen = cache.keeping(cut, source())
        assert await gen.__anext__() == b"a"
        await gen.aclose()  # the client went away
        assert b"".join([c async for c in cache.keeping(whole, source())]) == b"abc"
        return cache.get(cut), cache.get(whole)

    assert asyncio.run(run()) == (None, b"abc")
