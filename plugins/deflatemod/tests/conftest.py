"""``serve(xml)`` runs a test in memory and over real sockets (``ocsi_client``); ``memory(xml)``
in memory only. ``deflate_content`` (an extension module beside the tests) gives ``<payload>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

PREAMBLE = '<extension module="deflate_content"/>'


@pytest.fixture
def serve(ocsi_client: Callable[..., Any]) -> Callable[..., Any]:
    return lambda xml: ocsi_client(PREAMBLE + xml)


@pytest.fixture
def memory(ocsi_memory: Callable[..., Any]) -> Callable[..., Any]:
    return lambda xml: ocsi_memory(PREAMBLE + xml)
