"""A small, short-lived cache of path checks (``stat``/``lstat`` results), per configuration.

What the hot path repeats for every request of a popular file is the resolution: the symlink
checks of each component, the index lookup of a directory, the probing of precompressed
siblings, and the negative answers (404s are cheap to ask for and stat-heavy to answer). Those
are kept for ``ttl`` seconds (default 1). A request opens the file and its ``fstat`` is
compared with the cached inode (another inode means the cached check is dropped and redone); a
file rewritten in place gets new validators from that ``fstat``.

Small files (up to :data:`BODY_MAX` bytes, :data:`BODIES` of them) are also kept whole, as
nginx's ``open_file_cache`` keeps their descriptors: a request without conditions or ranges for
a file whose check is fresh is answered from memory with one ``stat`` (``lstat`` where the
policy refuses a symbolic link there) instead of ``open``/``fstat``/``pread``/``close``. That
``stat`` must match the check (inode, device, size, modification time to the nanosecond), so a
replaced or rewritten file is seen on the next request, as without the cache; contents are kept
only when the ``fstat`` after reading them matches too, and never for a file modified less than
:data:`RACY` seconds ago, whose rewrite of the same size could keep the same modification time
(git's "racy" rule).

No descriptor is kept open, so a cache never pins deleted files or uses up descriptors. Every
cache registers itself so that ``clearcache`` (the ``ocsi_clear_caches`` hook) and a reload
empty them all; each configuration (reload) builds new caches.
"""

from __future__ import annotations

import os
import time
import weakref

import ocsi

from .resolve import Entry, lookup

DEFAULT_TTL = 1.0
DEFAULT_ENTRIES = 4096
#: Files up to this size are kept whole, at most ``BODIES`` of them per cache (2 MiB at most).
BODY_MAX = 8 * 1024
BODIES = 256
#: A file modified less than this many seconds ago is read every time, never kept.
RACY = 2.0

_registry: weakref.WeakSet[FileCache] = weakref.WeakSet()

#: Lookups answered from a cache, and those that had to check the file system, for every
#: cache of the process (``ocsi_static_cache_total`` of ocsi-ext-metrics): counts outlive the
#: caches a reload replaces.
_LOOKUPS = ocsi.STATS.counter("ocsi_static_cache_total", "staticmod's file checks answered "
                              "from its cache (hit) or the file system (miss)", ("result",))
_HITS = _LOOKUPS.labels("hit")
_MISSES = _LOOKUPS.labels("miss")


class FileCache:
    """``(path, check_root, policy) -> Entry`` for ``ttl`` seconds, at most ``max_entries``."""

    __slots__ = ("ttl", "max_entries", "_entries", "_bodies", "__weakref__")

    def __init__(self, ttl: float = DEFAULT_TTL, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max(1, max_entries)
        self._entries: dict[tuple[str, str, str], tuple[float, Entry]] = {}
        #: The contents of small files, by the check they were validated against.
        self._bodies: dict[Entry, bytes] = {}
        _registry.add(self)

    def get(self, path: str, check_root: str, policy: str) -> Entry:
        if self.ttl <= 0:
            return lookup(path, check_root, policy)
        key = (path, check_root, policy)
        now = time.monotonic()
        item = self._entries.get(key)
        if item is not None and item[0] > now:
            _HITS.value += 1
            return item[1]
        _MISSES.value += 1
        entry = lookup(path, check_root, policy)
        entries = self._entries
        if item is None and len(entries) >= self.max_entries:
            self._evict(now)
        entries[key] = (now + self.ttl, entry)
        return entry

    def body(self, entry: Entry, path: str, policy: str) -> bytes | None:
        """The kept contents of the file at ``path`` (checked as ``entry``), if any and if the
        file is still the one they were read from."""
        data = self._bodies.get(entry)
        if data is None:
            return None
        try:
            st = os.stat(path) if (entry.link or policy == "always") else os.lstat(path)
        except OSError:
            st = None
        if (st is None or st.st_mtime_ns != entry.mtime_ns or st.st_size != len(data)
                or st.st_ino != entry.ino or st.st_dev != entry.dev):
            del self._bodies[entry]
            return None
        return data

    def keep_body(self, entry: Entry, fd: int, size: int) -> bytes | None:
        """Read the open file ``fd`` (``size`` bytes, checked as ``entry``) and keep it when it
        is small, settled and still what ``entry`` says; returns what was read, or ``None``."""
        if size > BODY_MAX or self.ttl <= 0 or entry.mtime_ns > (time.time() - RACY) * 1e9:
            return None
        data = os.pread(fd, size, 0)
        st = os.fstat(fd)
        if (len(data) != size or st.st_size != size or st.st_mtime_ns != entry.mtime_ns
                or st.st_ino != entry.ino or st.st_dev != entry.dev):
            return None  # changed while being read
        bodies = self._bodies
        if len(bodies) >= BODIES:
            del bodies[next(iter(bodies))]  # the oldest
        bodies[entry] = data
        return data

    @property
    def kept(self) -> int:
        """How many small files are kept whole."""
        return len(self._bodies)

    def refresh(self, path: str, check_root: str, policy: str) -> Entry:
        """Drop the cached check of ``path`` and redo it (after a failed open)."""
        item = self._entries.pop((path, check_root, policy), None)
        if item is not None:
            self._bodies.pop(item[1], None)
        return self.get(path, check_root, policy)

    def _evict(self, now: float) -> None:
        entries = self._entries
        expired = [k for k, (exp, _) in list(entries.items()) if exp <= now]
        for k in expired:
            del entries[k]
        if len(entries) >= self.max_entries:  # all fresh: drop the oldest quarter
            for k in list(entries)[: max(1, self.max_entries // 4)]:
                del entries[k]

    def clear(self) -> None:
        self._entries.clear()
        self._bodies.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: Used by steps built from Python (``static(dir=…)``) without an explicit cache.
default_cache = FileCache()


def clear_all() -> None:
    """Empty every live cache (``clearcache`` and reloads)."""
    for cache in list(_registry):
        cache.clear()
