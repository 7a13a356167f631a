"""Hypothesis profiles for the property-based tests of this directory (imported by each).

``ci`` (the default) is a fixed, small budget and a fixed seed, so a run is the same run every
time, after the examples that once failed, kept in ``tests/fuzz/.hypothesis``, replayed first. ``OCSI_FUZZ=long`` is the exploratory run:
random seeds, fifty times the examples, and whatever fails is saved to that directory, to be
committed with its fix so that CI replays it from then on.
"""

from __future__ import annotations

import os
from pathlib import Path

from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

DATABASE = DirectoryBasedExampleDatabase(Path(__file__).parent / ".hypothesis")
PROFILE = os.environ.get("OCSI_FUZZ", "ci")
#: How many times each property's CI budget the long run tries.
LONG_FACTOR = 50

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", database=ReadOnlyDatabase(DATABASE), **_COMMON)
settings.register_profile("long", database=DATABASE, **_COMMON)
settings.load_profile(PROFILE)


SEED = 18
T = TypeVar("T", bound=Callable[..., object])


def budget(examples: int) -> Callable[[T], T]:
    """A property's settings: ``examples`` with the fixed seed in CI, ``LONG_FACTOR`` times
    more from a random one in the long run. Put it above ``@given``."""
    def apply(test: T) -> T:
        if PROFILE == "long":
            return settings(max_examples=examples * LONG_FACTOR)(test)  # type: ignore[no-any-return]
        return seed(SEED)(settings(max_examples=examples)(test))  # type: ignore[no-any-return]
    return apply
