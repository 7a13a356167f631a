"""Which event loop ocsi runs on.

``OCSI_LOOP=asyncio`` or ``OCSI_LOOP=uvloop`` forces a choice; by default the standard asyncio
loop is used, because its socket transports support ``loop.sendfile`` (zero-copy static files).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any


def choice() -> str:
    wanted = os.environ.get("OCSI_LOOP", "asyncio").lower()
    if wanted == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
        return "uvloop"
    return "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    if choice() == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)
