"""nginx ``limit_req``'s leaky bucket over a :class:`~.table.SharedTable`.

Each key has the time of its last accepted request and its *excess*: how many requests
beyond the rate it has sent, leaking at ``rate`` per second. As in
``ngx_http_limit_req_lookup``, a request computes ``excess - rate * elapsed + 1`` (at least
0): above ``burst`` it is refused and the slot is left as it was; otherwise the slot takes the
new excess and the request waits ``(excess - delay) / rate`` seconds when its excess is above
``delay`` (0 by default; ``nodelay`` is ``delay = burst``). A key seen for the first time
starts at an excess of 0.
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass

from .table import SharedTable

#: last accepted request (``time.monotonic_ns() // 1000``, machine-wide), excess in
#: millionths of a request: integers, as nginx counts (in thousandths), so that a request
#: exactly on the rate is never refused for a rounding error
RECORD = struct.Struct("<qq")
UNIT = 1_000_000
#: A slot's time this far (µs) ahead of the clock was written before the machine restarted
#: (``CLOCK_MONOTONIC`` starts again at boot). Closer, it is another caller's ``now``.
REBOOT = 60 * UNIT


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a request gets: ``delay`` seconds to wait before going on, or, when refused,
    ``retry_after`` seconds (whole, at least 1) before one would be accepted."""

    accepted: bool
    delay: float = 0.0
    retry_after: int = 0
    excess: float = 0.0


ACCEPT = Verdict(True)


class Bucket:
    """The limit of one ``<ratelimit>``: ``rate`` requests a second, ``burst`` beyond it."""

    def __init__(self, table: SharedTable, rate: float, burst: int, delay: float) -> None:
        self.table = table
        self.rate = rate
        self._rate = max(1, round(rate * UNIT))  # millionths of a request per second
        self.burst = burst * UNIT
        self.delay = round(delay * UNIT)
        self._now = 0

    def _idle_value(self, record: tuple[object, ...]) -> float:
        """How much a slot is worth keeping, for eviction: its excess once leaked (0 when the
        key would start afresh anyway; a key still limited is kept the longest)."""
        last, excess = record
        assert isinstance(last, int) and isinstance(excess, int)
        if self._now - last < -REBOOT:
            return 0  # from before a reboot: worth nothing
        return max(0, excess - self._rate * max(0, self._now - last) // UNIT)

    def take(self, key: str, now: float | None = None) -> Verdict:
        """Count one request for ``key`` at ``now`` (seconds; default: the monotonic clock)."""
        table = self.table
        digest, first = table.entry(key)
        m = table.lock()
        try:
            # the time is read under the lock: read before, another worker could write a
            # later one first, and this one would see the slot from its future
            us = time.monotonic_ns() // 1000 if now is None else round(now * UNIT)
            off = table.find(m, digest, first)
            if off < 0:
                self._now = us
                off = table.claim(m, digest, self._idle_value)
                RECORD.pack_into(m, off + 16, us, 0)  # a slot is always found: any may be evicted
                return ACCEPT
            last, stored = RECORD.unpack_from(m, off + 16)
            elapsed = us - last
            if elapsed < -REBOOT:  # a clock from before a reboot (the file outlives it): forget
                excess = 0
            else:
                excess = max(0, stored - self._rate * max(0, elapsed) // UNIT + UNIT)
            if excess > self.burst:
                wait = (excess - self.burst) / self._rate
                return Verdict(False, retry_after=max(1, math.ceil(wait)), excess=excess / UNIT)
            RECORD.pack_into(m, off + 16, us, excess)
        finally:
            table.unlock()
        if excess <= self.delay:
            return ACCEPT
        return Verdict(True, delay=(excess - self.delay) / self._rate, excess=excess / UNIT)
