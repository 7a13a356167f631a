"""Several destinations for one rule: which to try, in which order, and passive health.

``dest`` may list several URLs (separated by white space). Each request tries them in the
order the policy gives: ``roundrobin`` (the default) turns the list by one each request,
``leastconn`` prefers the one with the fewest requests in flight. A destination that fails to
connect (or resets before answering) is skipped for ``failtimeout`` seconds; when every one is
marked down they are all tried anyway, so a recovered backend is found again.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

POLICIES = ("roundrobin", "leastconn")


class Balancer:
    def __init__(self, count: int, policy: str = "roundrobin", fail_timeout: float = 10.0) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown balancing policy {policy!r} (known: {', '.join(POLICIES)})")
        self.count = count
        self.policy = policy
        self.fail_timeout = fail_timeout
        self._turn = itertools.count()
        self._down_until = [0.0] * count
        self.active = [0] * count

    def order(self) -> Sequence[int]:
        """Indices of the destinations to try for one request, healthy ones first."""
        n = self.count
        if n == 1:
            return (0,)
        if self.policy == "leastconn":
            ranked = sorted(range(n), key=lambda i: (self.active[i], i))
        else:
            start = next(self._turn) % n
            ranked = [(start + k) % n for k in range(n)]
        now = time.monotonic()
        up = [i for i in ranked if self._down_until[i] <= now]
        return up + [i for i in ranked if self._down_until[i] > now]

    def failed(self, index: int) -> None:
        self._down_until[index] = time.monotonic() + self.fail_timeout

    def succeeded(self, index: int) -> None:
        self._down_until[index] = 0.0

    def is_down(self, index: int) -> bool:
        return self._down_until[index] > time.monotonic()
