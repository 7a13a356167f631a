"""The origin the cache tests put behind ``<cache/>`` (a real HTTP server), stopped after."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from origin import Origin  # noqa: E402


@pytest.fixture
def origin() -> Iterator[Origin]:
    o = Origin()
    yield o
    o.stop()
