"""Hypothesis profiles for the property-based tests of this directory (imported by each).

``ci`` (the default) is a fixed, small budget and a fixed seed, so a run is the same run every
time, after the examples that once failed, kept in ``tests/fuzz/.hypothesis``, replayed first. ``OCSI_FUZZ=long`` is the exploratory run:
random seeds, fifty times the examples, and whatever fails is saved to that directory, to be
committed with its fix so that CI replays it from then on.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from hypothesis import HealthCheck, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

DATABASE = DirectoryBasedExampleDatabase(Path(__file__).parent / ".hypothesis")
PROFILE = os.environ.get("OCSI_FUZZ", "ci")
#: How many times each property's CI budget the long run tries.
LONG_FACTOR = 50

_COMMON = settings(deadline=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                          HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", parent=_COMMON, database=ReadOnlyDatabase(DATABASE))
settings.register_profile("long", parent=_COMMON, database=DATABASE)
settings.load_profile(PROFILE)


SEED = 18
T = TypeVar("T", bound=Callable[..., object])


def budget(examples: int) -> Callable[[T], T]:
    """A property's settings: ``examples`` with the fixed seed in CI, ``LONG_FACTOR`` times
    more from a random one in the long run. Put it above ``@given``."""
    def apply(test: T) -> T:
        if PROFILE == "long":
            return settings(max_examples=examples * LONG_FACTOR)(test)
        return seed(SEED)(settings(max_examples=examples)(test))
    return apply


@contextlib.contextmanager
def bounded(seconds: int) -> Iterator[None]:
    """A hang detector, not a measure: code that should take milliseconds and has not
    returned after ``seconds`` fails the test (an alarm in the main thread) instead of
    leaving the suite stuck. The alarm interrupts the code where it is; if that code turns
    the interruption into an answer (a server's 500), the test fails all the same."""
    fired = False

    def hung(signum: int, frame: Any) -> None:
        nonlocal fired
        fired = True
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if fired:
        raise TimeoutError(f"no answer within {seconds} s")
