"""Compressed representations of static files, kept in memory.

Compressing the same 20 KB page for every request costs far more than sending it: zlib at
level 6 runs at a few tens of MB/s, so a page is ~0.5 ms of one core per request. A file's
compressed form depends only on its bytes, the coding and the level, so it is computed once
and kept here, keyed on the file's identity as ``fstat`` gives it (device, inode, size,
modification time in nanoseconds) with the coding and level. An edited or replaced file has a
new key: the old entry is never served again and ages out.

- Only files last modified at least ``RACY`` seconds ago are kept (git's "racy" rule): a
  file rewritten at the same size within the file system's timestamp granularity keeps its
  modification time, so an entry taken just after a write could outlive the next one. Once a
  file is older than that, any later write gives it a new modification time, hence a new key.
- Filled on first use: the first response streams as usual, and its compressed bytes are
  kept on the side when the whole file went through (a client that goes away early leaves
  nothing). Only files up to ``max_file`` bytes are kept, which bounds that side copy.
- Bounded: ``budget`` bytes of compressed data in all, least recently used dropped first.
- One cache per configuration (it belongs to the configuration's :class:`DeflateOptions`), so
  a reload starts empty and the old one goes with the old configuration; ``clearcache``
  empties every live one.

Only a :class:`ocsi.FileBody` covering a whole regular file qualifies: a stream, a generated
page or a byte range is compressed as a stream every time.
"""

from __future__ import annotations

import os
import stat
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator

import ocsi
from ocsi import BytesBody, FileBody

Key = tuple[int, int, int, int, str, int]

#: Seconds a file must have gone unmodified before its compressed form is kept (timestamps
#: are as coarse as 2 s on some file systems).
RACY = 2.0
DEFAULT_BUDGET = 32 * 1024 * 1024
DEFAULT_MAX_FILE = 1024 * 1024

#: Every cache's lookups, for ocsi-ext-metrics (kept when a reload replaces the caches).
_LOOKUPS = ocsi.STATS.counter("ocsi_deflate_cache_total", "deflatemod's compressed files "
                              "found in its cache (hit) or compressed again (miss)", ("result",))
_HITS = _LOOKUPS.labels("hit")
_MISSES = _LOOKUPS.labels("miss")


class CompressedCache:
    """An LRU of compressed file contents, bounded in bytes."""

    def __init__(self, budget: int = DEFAULT_BUDGET, max_file: int = DEFAULT_MAX_FILE) -> None:
        self.budget = budget
        self.max_file = max_file
        self._entries: OrderedDict[Key, bytes] = OrderedDict()
        self.size = 0
        self.hits = 0
        self.misses = 0
        _LIVE.add(self)

    def key(self, body: FileBody | BytesBody, coding: str, level: int) -> Key | None:
        """The entry for this body, or ``None`` when it cannot have one (part of a file, a
        file too big, not a regular file, the cache off). A :class:`BytesBody` has one when it
        carries the identity of the whole file it holds (staticmod's small files)."""
        if self.budget <= 0 or body.length is None or body.length > self.max_file:
            return None
        if type(body) is BytesBody:
            ident = body.identity
            if ident is None or time.time() - ident[3] / 1e9 < RACY:
                return None
            return (*ident, coding, level)
        assert isinstance(body, FileBody)
        try:
            st = os.fstat(body.fd)
        except OSError:
            return None
        if body.offset != 0 or body.length != st.st_size or not stat.S_ISREG(st.st_mode):
            return None
        if time.time() - st.st_mtime < RACY:
            return None  # just written: its timestamp may not change at the next write
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, coding, level)

    def get(self, key: Key) -> bytes | None:
        data = self._entries.get(key)
        if data is None:
            self.misses += 1
            _MISSES.value += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        _HITS.value += 1
        return data

    def put(self, key: Key, data: bytes) -> None:
        if len(data) > self.budget or key in self._entries:
            return
        self._shrink(self.budget - len(data))
        self._entries[key] = data
        self.size += len(data)

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _shrink(self, room: int) -> None:
        while self._entries and self.size > room:
            _, old = self._entries.popitem(last=False)
            self.size -= len(old)

    async def keeping(self, key: Key, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks`` passed through, and kept under ``key`` once they have all gone out."""
        kept: list[bytes] = []
        async for chunk in chunks:
            kept.append(chunk)
            yield chunk
        self.put(key, b"".join(kept))


_LIVE: weakref.WeakSet[CompressedCache] = weakref.WeakSet()


def clear_all() -> None:
    """``clearcache``: empty every cache still in use."""
    for cache in list(_LIVE):
        cache.clear()
