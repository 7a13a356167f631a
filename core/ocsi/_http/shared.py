"""What every connection reads from the manager that serves it, as a type.

:class:`~.connection.ConnectionManager` is the one implementation; the connection modules
(:mod:`.protocol`, :mod:`.h2conn`, :mod:`.exchange`, :mod:`.sending`) name this instead, so the
manager imports them and none of them imports it back.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .access import AccessRecord
from .limits import Limits
from .request import Request
from .response import Response

__all__ = ["App", "Shared"]

#: What the connection layer calls for each request (the server's pipeline).
App = Callable[[Request], Awaitable[Response]]


class Shared(Protocol):
    """The manager as its connections see it (``app`` and ``limits`` change on reload)."""

    app: App
    limits: Limits
    access_log: Callable[[AccessRecord], None] | None
    use_sendfile: bool
    in_flight: int
    closing: bool
    server_line: str

    def has_room(self) -> bool: ...

    def register(self, conn: Any, loop: asyncio.AbstractEventLoop) -> None: ...

    def unregister(self, conn: Any) -> None: ...
