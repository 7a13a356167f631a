"""A fixed-size hash table in a file mapped by every worker of the machine.

Workers are separate processes (forked, each building its own configuration), so a count kept
in one of them would let N workers admit N times the limit. The table lives in a file
(``<datadir>/ratelimit/ZONE-KIND-SLOTS.table``) that each process maps with ``mmap``
(``MAP_SHARED``: a write is seen by the others at once, no copy, no system call per read). An
update is a read-modify-write of one slot under ``flock`` on the file: two system calls per
request, a few microseconds, and the lock is never held across an ``await``. ``flock``
belongs to the open file description, so every process opens the file itself (after a fork
the table is opened again, see :meth:`SharedTable.ensure_open`).

The size is fixed when the file is made, so memory never grows: a key is looked for in a
window of ``PROBES`` slots after its hash; a new key takes an empty slot of that window or,
when there is none, the slot whose state is worth least (the owner decides, see
``victim``). An attacker rotating addresses only ever replaces such slots.

Keys are stored as 16-byte BLAKE2b digests with a per-table random salt (in the header), so
a slot has a fixed size whatever the key (a long header value), and nobody can choose keys
that collide in the table.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("ocsi.ext.ratelimit")

MAGIC = b"OCSIRL01"
#: magic, kind, slot size, slots, salt
HEADER = struct.Struct("<8s4sII16s")
HEADER_SIZE = 64
#: Slots looked at for one key: bounds the cost of a lookup and of an insertion.
PROBES = 8
EMPTY = bytes(16)
#: Digests remembered per table (computing one costs more than the rest of a lookup).
DIGESTS = 4096

#: Incremented in every forked child: a table opened before the fork is opened again.
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class SharedTable:
    """``slots`` records of ``record.size`` bytes after a 16-byte key digest, in a file.

    The methods that read or write slots must be called inside :meth:`locked`.
    """

    def __init__(self, path: str, kind: bytes, record: struct.Struct, slots: int) -> None:
        self.path = path
        self.kind = kind
        self.record = record
        self.slot_size = 16 + record.size
        self.slots = slots
        self.size = HEADER_SIZE + (slots + PROBES) * self.slot_size  # no wrap-around
        self._pid = -1
        self._opened = -1  # the fork generation it was opened in
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._salt = b""
        self._entries: dict[str, tuple[bytes, int]] = {}

    # -- opening -----------------------------------------------------------------------------
    def ensure_open(self) -> None:
        """Open and map the file in this process (again after a fork: see the module)."""
        if self._opened == _forks[0]:
            return
        self._drop()
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                head = os.pread(fd, HEADER.size, 0)
                if len(head) < HEADER.size or HEADER.unpack(head)[0] != MAGIC:
                    os.ftruncate(fd, 0)  # a new file, or one left half made: start afresh
                    os.ftruncate(fd, self.size)
                    os.pwrite(fd, HEADER.pack(MAGIC, self.kind, self.slot_size, self.slots,
                                              os.urandom(16)), 0)
                    head = os.pread(fd, HEADER.size, 0)
                _, kind, slot_size, slots, salt = HEADER.unpack(head)
                if (kind, slot_size, slots) != (self.kind, self.slot_size, self.slots) or \
                        os.fstat(fd).st_size != self.size:
                    raise OSError(f"{self.path} holds another table ({kind!r}, {slots} slots)")
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._salt = salt
        self._entries.clear()
        self._pid = os.getpid()
        self._opened = _forks[0]

    def _drop(self) -> None:
        if self._map is not None and self._pid == os.getpid():
            self._map.close()
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._map, self._fd, self._pid, self._opened = None, -1, -1, -1

    def close(self) -> None:
        self._drop()

    def __del__(self) -> None:
        try:
            self._drop()
        except Exception:  # noqa: BLE001 - at exit, nothing to tell anyone
            pass

    # -- access ------------------------------------------------------------------------------
    def digest(self, key: str) -> bytes:
        """The 16 bytes a key is stored as (never all zeros: that marks an empty slot)."""
        return self.entry(key)[0]

    def entry(self, key: str) -> tuple[bytes, int]:
        """``key``'s digest and the offset of the first slot of its window, remembered for
        the last ``DIGESTS`` keys (a digest costs more than the rest of a lookup)."""
        if self._opened != _forks[0]:
            self.ensure_open()  # the salt is the file's
        found = self._entries.get(key)
        if found is None:
            d = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=16,
                                key=self._salt).digest()
            if d == EMPTY:
                d = b"\x01" + d[1:]
            if len(self._entries) >= DIGESTS:
                self._entries.clear()  # bounded; the busy keys come back at once
            first = HEADER_SIZE + (int.from_bytes(d[:8], "little") % self.slots) * self.slot_size
            found = self._entries[key] = (d, first)
        return found

    def lock(self) -> mmap.mmap:
        """The mapped table, under the exclusive lock: the caller calls :meth:`unlock` in a
        ``finally``, with no ``await`` in between (a context manager costs a microsecond
        more per request)."""
        if self._opened != _forks[0]:
            self.ensure_open()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self._map  # type: ignore[return-value]  # open: ensure_open mapped it

    def unlock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def locked(self) -> Iterator[mmap.mmap]:
        """:meth:`lock` as a context manager, where a microsecond does not matter."""
        m = self.lock()
        try:
            yield m
        finally:
            self.unlock()

    def window(self, digest: bytes) -> range:
        """The offsets of the slots ``digest`` may be in."""
        first = HEADER_SIZE + (int.from_bytes(digest[:8], "little") % self.slots) * self.slot_size
        return range(first, first + PROBES * self.slot_size, self.slot_size)

    def find(self, m: mmap.mmap, digest: bytes, first: int = -1) -> int:
        """The offset of ``digest``'s slot, or -1 (``first``: the start of its window, when
        known from :meth:`entry`)."""
        if first < 0:
            first = self.window(digest).start
        end = first + PROBES * self.slot_size
        off = m.find(digest, first, end)
        while off >= 0 and (off - HEADER_SIZE) % self.slot_size:
            off = m.find(digest, off + 1, end)  # the bytes of some record, not a key
        return off

    def claim(self, m: mmap.mmap, digest: bytes,
              victim: Callable[[tuple[object, ...]], float | None]) -> int:
        """A slot for a new key: an empty one, else the one ``victim`` values least (it
        returns ``None`` for a slot that must not be taken); -1 when none may be."""
        best, best_value = -1, 0.0
        unpack = self.record.unpack_from
        for off in self.window(digest):
            if m[off:off + 16] == EMPTY:
                best = off
                break
            value = victim(unpack(m, off + 16))
            if value is not None and (best < 0 or value < best_value):
                best, best_value = off, value
        if best >= 0:
            m[best:best + 16] = digest
        return best

    def read(self, m: mmap.mmap, off: int) -> tuple[object, ...]:
        return self.record.unpack_from(m, off + 16)

    def write(self, m: mmap.mmap, off: int, *values: object) -> None:
        self.record.pack_into(m, off + 16, *values)

    def clear(self, m: mmap.mmap, off: int) -> None:
        m[off:off + self.slot_size] = bytes(self.slot_size)

    def used(self) -> int:
        """How many slots hold a key (for tests and the bounds check)."""
        with self.locked() as m:
            return sum(1 for i in range(self.slots + PROBES)
                       if m[HEADER_SIZE + i * self.slot_size:HEADER_SIZE + i * self.slot_size + 16]
                       != EMPTY)


def table_path(directory: str, zone: str, kind: str, slots: int) -> str:
    """Where a zone's table lives: its layout is in the name, so a reload that changes the
    size or the kind uses a new file instead of misreading the old one."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in zone)
    return os.path.join(directory, f"{safe}-{kind}-{slots}.table")
