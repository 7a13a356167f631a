from __future__ import annotations

import pytest
from deflate_harness import PREAMBLE, MemoryClient, SocketClient


def _socket_available() -> bool:
    try:
        import ocsi.server  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["memory", "socket"])
def serve(request):  # type: ignore[no-untyped-def]
    """``serve(xml)`` → a client; each test using it runs in memory and over real sockets."""
    if request.param == "socket":
        if not _socket_available():
            pytest.skip("ocsi.server is not available")
        start = request.getfixturevalue("ocsi_server")
        return lambda xml: SocketClient(start, PREAMBLE + xml)
    return lambda xml: MemoryClient(PREAMBLE + xml)


@pytest.fixture
def memory():  # type: ignore[no-untyped-def]
    return lambda xml: MemoryClient(PREAMBLE + xml)
