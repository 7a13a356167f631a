from __future__ import annotations

import pytest
from ac_harness import PREAMBLE, MemoryClient, SocketClient, socket_available


@pytest.fixture(params=["memory", "socket"])
def serve(request):  # type: ignore[no-untyped-def]
    """``serve(xml)`` → a client; every test using it runs in memory and over real sockets."""
    if request.param == "socket":
        if not socket_available():
            pytest.skip("ocsi.server is not available")
        start = request.getfixturevalue("ocsi_server")
        return lambda xml, preamble=PREAMBLE: SocketClient(start, preamble + xml)
    return lambda xml, preamble=PREAMBLE: MemoryClient(preamble + xml)


@pytest.fixture
def memory():  # type: ignore[no-untyped-def]
    """``memory(xml)`` → an in-memory client (any client address, TLS flag, version)."""
    return lambda xml: MemoryClient(PREAMBLE + xml)
