"""The ``serve`` and ``memory`` fixtures of an extension's tests, with the extension loaded.

An extension's tests mostly start servers whose configuration begins the same way (its
``<extension>`` line, a content module): a conftest declares that beginning once::

    from ocsi.testing import preamble_fixtures

    serve, memory = preamble_fixtures('<extension findlib-package="ocsi-ext-foo"/>')

``serve(xml)`` then runs the test in memory and over real sockets (``ocsi_client``), and
``memory(xml)`` in memory only (another client address, TLS, HTTP/1.0); ``serve(xml,
preamble=…)`` replaces the preamble for one server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["preamble_fixtures"]

Start = Callable[..., Any]


def preamble_fixtures(preamble: str) -> tuple[Any, Any]:
    """The fixtures ``serve`` and ``memory``, each starting servers on ``preamble + xml``."""

    @pytest.fixture(name="serve")
    def serve(ocsi_client: Start) -> Start:
        def start(xml: str, preamble: str = preamble) -> Any:
            return ocsi_client(preamble + xml)
        return start

    @pytest.fixture(name="memory")
    def memory(ocsi_memory: Start) -> Start:
        def start(xml: str, preamble: str = preamble) -> Any:
            return ocsi_memory(preamble + xml)
        return start

    return serve, memory
