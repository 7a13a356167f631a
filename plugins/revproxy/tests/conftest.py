"""Backends the proxy tests start (real servers on 127.0.0.1), stopped when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from backend import Backend, RawBackend

EXT = '<extension findlib-package="ocsi-ext-revproxy"/>'


@pytest.fixture
def backend() -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def start(name: str = "b1", tls: Any = None) -> Backend:
        b = Backend(name, tls)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def raw_backend() -> Iterator[RawBackend]:
    """A backend that records the request heads it receives as bytes (:class:`RawBackend`)."""
    b = RawBackend()
    yield b
    b.stop()
