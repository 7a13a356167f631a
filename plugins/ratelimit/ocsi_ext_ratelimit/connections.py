"""nginx ``limit_conn``: requests in progress per key, over a :class:`~.table.SharedTable`.

A slot holds, for one key, up to ``SHARES`` pairs (process id, requests in progress), one per
worker with requests of that key in progress; the key's count is their sum. Each worker only
ever changes its own pair, so a worker that dies (SIGKILL, a crash) can be told from the
others: when a key reaches its maximum, the pairs of processes that no longer exist are
cleared before refusing. A key whose count is 0 frees its slot; a slot in use is never
taken by another key (it counts requests in progress), so a full window refuses the new key.
"""

from __future__ import annotations

import os
import struct

from .table import SharedTable

#: Worker processes that can hold requests of one key at the same time.
SHARES = 8
RECORD = struct.Struct("<" + "II" * SHARES)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Counter:
    """The limit of one ``<connlimit>``: at most ``maximum`` requests in progress per key."""

    def __init__(self, table: SharedTable, maximum: int) -> None:
        self.table = table
        self.maximum = maximum

    @staticmethod
    def _victim(record: tuple[object, ...]) -> float | None:
        return 0.0 if not any(record[1::2]) else None  # only a slot with nothing in progress

    def acquire(self, key: str) -> bytes | None:
        """Count a request of ``key``; its digest (for :meth:`release`), or ``None`` when the
        key is at its maximum or the table has no room for it."""
        table = self.table
        digest = table.digest(key)
        pid = os.getpid()
        with table.locked() as m:
            off = table.find(m, digest)
            if off < 0:
                off = table.claim(m, digest, self._victim)
                if off < 0:
                    return None
                table.write(m, off, *([0] * (2 * SHARES)))
            record = list(RECORD.unpack_from(m, off + 16))
            if sum(record[1::2]) >= self.maximum:
                for i in range(0, 2 * SHARES, 2):
                    if record[i + 1] and record[i] != pid and not _alive(record[i]):
                        record[i] = record[i + 1] = 0  # a dead worker's requests are over
                if sum(record[1::2]) >= self.maximum:
                    RECORD.pack_into(m, off + 16, *record)
                    return None
            mine = next((i for i in range(0, 2 * SHARES, 2) if record[i] == pid and record[i + 1]),
                        None)
            if mine is None:
                mine = next((i for i in range(0, 2 * SHARES, 2) if not record[i + 1]), None)
                if mine is None:
                    return None  # more workers than SHARES hold this key: refuse, never lose count
                record[mine] = pid
            record[mine + 1] += 1
            RECORD.pack_into(m, off + 16, *record)
        return digest

    def release(self, digest: bytes) -> None:
        """One request of the key ``digest`` is over (in the process that acquired it)."""
        table = self.table
        pid = os.getpid()
        with table.locked() as m:
            off = table.find(m, digest)
            if off < 0:
                return
            record = list(RECORD.unpack_from(m, off + 16))
            for i in range(0, 2 * SHARES, 2):
                if record[i] == pid and record[i + 1]:
                    record[i + 1] -= 1
                    break
            if not any(record[1::2]):
                table.clear(m, off)
            else:
                RECORD.pack_into(m, off + 16, *record)

    def in_progress(self, key: str) -> int:
        """The key's count now (tests, diagnostics)."""
        table = self.table
        digest = table.digest(key)
        with table.locked() as m:
            off = table.find(m, digest)
            return 0 if off < 0 else sum(RECORD.unpack_from(m, off + 16)[1::2])
