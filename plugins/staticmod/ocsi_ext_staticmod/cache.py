"""A small, short-lived cache of path checks (``stat``/``lstat`` results), per configuration.

What the hot path repeats for every request of a popular file is the resolution: the symlink
checks of each component, the index lookup of a directory, the probing of precompressed
siblings, and the negative answers (404s are cheap to ask for and stat-heavy to answer). Those
are kept for ``ttl`` seconds (default 1). File contents are never stale: each request opens the
file and its ``fstat`` is compared with the cached inode (another inode means the cached check
is dropped and redone); a file rewritten in place gets new validators from that ``fstat``.

No descriptor is kept open, so a cache never pins deleted files or uses up descriptors. Every
cache registers itself so that ``clearcache`` (the ``ocsi_clear_caches`` hook) and a reload
empty them all; each configuration (reload) builds new caches.
"""

from __future__ import annotations

import time
import weakref

from .resolve import Entry, lookup

DEFAULT_TTL = 1.0
DEFAULT_ENTRIES = 4096

_registry: weakref.WeakSet[FileCache] = weakref.WeakSet()


class FileCache:
    """``(path, check_root, policy) -> Entry`` for ``ttl`` seconds, at most ``max_entries``."""

    __slots__ = ("ttl", "max_entries", "_entries", "hits", "misses", "__weakref__")

    def __init__(self, ttl: float = DEFAULT_TTL, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max(1, max_entries)
        self._entries: dict[tuple[str, str, str], tuple[float, Entry]] = {}
        self.hits = 0
        self.misses = 0
        _registry.add(self)

    def get(self, path: str, check_root: str, policy: str) -> Entry:
        if self.ttl <= 0:
            return lookup(path, check_root, policy)
        key = (path, check_root, policy)
        now = time.monotonic()
        item = self._entries.get(key)
        if item is not None and item[0] > now:
            self.hits += 1
            return item[1]
        self.misses += 1
        entry = lookup(path, check_root, policy)
        entries = self._entries
        if item is None and len(entries) >= self.max_entries:
            self._evict(now)
        entries[key] = (now + self.ttl, entry)
        return entry

    def refresh(self, path: str, check_root: str, policy: str) -> Entry:
        """Drop the cached check of ``path`` and redo it (after a failed open)."""
        self._entries.pop((path, check_root, policy), None)
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

    def __len__(self) -> int:
        return len(self._entries)


#: Used by steps built from Python (``static(dir=…)``) without an explicit cache.
default_cache = FileCache()


def clear_all() -> None:
    """Empty every live cache (``clearcache`` and reloads)."""
    for cache in list(_registry):
        cache.clear()
