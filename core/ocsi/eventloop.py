"""Which event loop ocsi runs on.

``OCSI_LOOP=asyncio`` or ``OCSI_LOOP=uvloop`` forces a choice; by default uvloop is used when
it is installed (the ``fast`` extra): about 10 % less CPU per request (``bench/http_layer.py``).
Static files stay zero-copy on both loops, since ``ocsi/_http/sending.py`` calls ``os.sendfile``
itself.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any


def choice() -> str:
    wanted = os.environ.get("OCSI_LOOP", "auto").lower()
    if wanted in ("uvloop", "auto"):
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
