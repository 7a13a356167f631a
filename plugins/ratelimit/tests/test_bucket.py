"""The leaky bucket and the connection counter on their shared table, at given instants (no
clock involved), and two processes sharing one table."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
from pathlib import Path
from typing import Any

import pytest
from ocsi_ext_ratelimit import connlimit, parse_rate, ratelimit
from ocsi_ext_ratelimit.table import PROBES


def bucket(tmp_path: Path, **kw: Any) -> Any:
    return ratelimit(directory=str(tmp_path), **kw).bucket


def test_rates() -> None:
    assert parse_rate("10r/s") == 10.0
    assert parse_rate(" 30r/m ") == 0.5
    assert parse_rate("0.5r/s") == 0.5
    for bad in ("10", "10r/h", "0r/s", "r/s", "-1r/s"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_burst_and_then_the_rate(tmp_path: Path) -> None:
    b = bucket(tmp_path, rate="2r/s", burst=3, nodelay=True)
    verdicts = [b.take("k", now=100.0) for _ in range(6)]
    assert [v.accepted for v in verdicts] == [True] * 4 + [False] * 2  # 1 + burst
    assert all(v.delay == 0 for v in verdicts)
    assert verdicts[4].retry_after == 1  # (4 - 3) / 2 s, rounded up
    assert not b.take("k", now=100.4).accepted  # 0.8 request leaked: not enough
    assert b.take("k", now=100.5).accepted  # one request leaked
    assert not b.take("k", now=100.5).accepted
    assert b.take("other", now=100.5).accepted  # keys are counted apart


def test_the_count_over_a_window_is_exact(tmp_path: Path) -> None:
    """At 10r/s without burst, one request every 10 ms for 10 s: exactly one in ten (101 with
    the first), whatever the spacing within each tenth of a second."""
    b = bucket(tmp_path, rate="10r/s")
    accepted = sum(b.take("k", now=1000.0 + i * 0.01).accepted for i in range(1001))
    assert accepted == 101


def test_delay_as_nginx(tmp_path: Path) -> None:
    """Without nodelay, the burst waits its turn: the n-th excess request n / rate seconds."""
    b = bucket(tmp_path, rate="4r/s", burst=3)
    delays = [b.take("k", now=50.0) for _ in range(5)]
    assert [v.accepted for v in delays] == [True] * 4 + [False]
    assert [v.delay for v in delays[:4]] == [0.0, 0.25, 0.5, 0.75]
    d = bucket(tmp_path, rate="4r/s", burst=3, delay=1, zone="z2")
    assert [d.take("k", now=50.0).delay for _ in range(4)] == [0.0, 0.0, 0.25, 0.5]


def test_retry_after_says_when(tmp_path: Path) -> None:
    b = bucket(tmp_path, rate="1r/m")
    assert b.take("k", now=10.0).accepted
    refused = b.take("k", now=10.0)
    assert (refused.accepted, refused.retry_after) == (False, 60)
    assert b.take("k", now=40.0).retry_after == 30
    assert b.take("k", now=70.0).accepted


def test_the_table_is_bounded_and_keeps_the_limited_keys(tmp_path: Path) -> None:
    """100 000 addresses through a table of 64 slots: it never holds more than its slots, and
    a key that is being limited is not pushed out by addresses seen once."""
    b = bucket(tmp_path, rate="1r/m", burst=1, nodelay=True, size=64)
    assert b.take("victim", now=0.0).accepted and b.take("victim", now=0.0).accepted
    assert not b.take("victim", now=0.0).accepted
    for i in range(100_000):
        assert b.take(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", now=1.0).accepted
    assert b.table.used() <= 64 + PROBES
    assert os.path.getsize(b.table.path) == b.table.size
    assert not b.take("victim", now=2.0).accepted


def test_a_reboot_clock_starts_afresh(tmp_path: Path) -> None:
    b = bucket(tmp_path, rate="1r/m")
    assert b.take("k", now=5000.0).accepted
    assert b.take("k", now=3.0).accepted  # the clock went back: the old slot means nothing
    assert not b.take("k", now=2.9).accepted  # a caller whose time was read a little earlier


def test_slots_from_before_a_reboot_are_replaced_first(tmp_path: Path) -> None:
    """Slots from before a reboot are worth nothing: a new key replaces them, not a key that
    is being limited now (one window: size 1)."""
    b = bucket(tmp_path, rate="1r/m", burst=1, nodelay=True, size=1)
    for i in range(PROBES - 1):
        assert b.take(f"before {i}", now=9000.0).accepted and b.take(f"before {i}", now=9000.0).accepted
    assert b.take("limited", now=1.0).accepted and b.take("limited", now=1.0).accepted
    assert not b.take("limited", now=1.0).accepted
    assert b.take("newcomer", now=1.0).accepted  # the window is full: a slot is taken
    assert not b.take("limited", now=1.0).accepted  # not this one


def test_connections_counted_and_given_back(tmp_path: Path) -> None:
    c = connlimit(max=2, directory=str(tmp_path)).counter
    first, second = c.acquire("k"), c.acquire("k")
    assert first is not None and second is not None
    assert c.acquire("k") is None and c.in_progress("k") == 2
    c.release(first)
    assert c.in_progress("k") == 1
    c.release(second)
    assert c.in_progress("k") == 0 and c.table.used() == 0  # the slot is free again


def test_a_full_window_refuses_new_keys_but_never_drops_counts(tmp_path: Path) -> None:
    c = connlimit(max=1, size=1, directory=str(tmp_path)).counter
    held = [c.acquire(f"k{i}") for i in range(PROBES)]
    assert all(h is not None for h in held)
    assert c.acquire("one more") is None
    assert all(c.in_progress(f"k{i}") == 1 for i in range(PROBES))


def _take_many(directory: str, n: int, out: multiprocessing.Queue[int]) -> None:
    b = ratelimit(rate="1r/m", burst=99, nodelay=True, directory=directory).bucket
    out.put(sum(b.take("shared").accepted for _ in range(n)))


def _hold(directory: str, out: multiprocessing.Queue[list[bool]], done: multiprocessing.synchronize.Event) -> None:
    c = connlimit(max=3, directory=directory).counter
    out.put([c.acquire("k") is not None for _ in range(2)])
    done.wait(30)


def test_processes_share_the_limit(tmp_path: Path) -> None:
    """Four processes taking 100 each from a limit of 100: 100 in all, not 400."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take_many, args=(str(tmp_path), 100, out)) for _ in range(4)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(counts) == 100


def test_a_dead_process_gives_its_connections_back(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    out, done = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_hold, args=(str(tmp_path), out, done))
    p.start()
    assert out.get(timeout=30) == [True, True]
    c = connlimit(max=3, directory=str(tmp_path)).counter
    assert c.acquire("k") is not None and c.acquire("k") is None  # 2 there + 1 here
    p.kill()
    p.join(30)
    assert c.acquire("k") is not None  # the dead process's two no longer count
    assert c.in_progress("k") == 2
