"""``serve(xml)`` runs a test in memory and over real sockets (``ocsi_client``); ``memory(xml)``
in memory only, where a test pretends to be another client address, TLS, or HTTP/1.0.
``ac_content`` (an extension module beside the tests) gives ``<page>`` and ``<mark>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

PREAMBLE = ('<extension findlib-package="ocsi-ext-accesscontrol"/>'
            '<extension module="ac_content"/>')


@pytest.fixture
def serve(ocsi_client: Callable[..., Any]) -> Callable[..., Any]:
    return lambda xml, preamble=PREAMBLE: ocsi_client(preamble + xml)


@pytest.fixture
def memory(ocsi_memory: Callable[..., Any]) -> Callable[..., Any]:
    return lambda xml: ocsi_memory(PREAMBLE + xml)
