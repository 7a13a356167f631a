"""The running server as extensions see it: what the lifecycle hooks are given.

``ocsi_server_started``, ``ocsi_reloaded`` and ``ocsi_server_stopping`` receive a
:class:`ServerView`, not the :class:`~ocsi.server.Server` itself: a small, typed, documented
face that can stay stable while the server's insides change. Everything an extension needs at
those moments is here; nothing else of the server is part of the API.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config.settings import ServerSettings
    from .server import Server

__all__ = ["ServerView"]


class ServerView:
    """The running server, read-only but for scheduling work on its event loop."""

    __slots__ = ("_server",)

    def __init__(self, server: Server) -> None:
        self._server = server

    @property
    def settings(self) -> ServerSettings:
        """The live configuration's ``<server>`` settings (treat them as read-only)."""
        return self._server.runtime.settings

    @property
    def datadir(self) -> str | None:
        """``<datadir>``: where extensions keep files across restarts (``None``: not set)."""
        return self._server.runtime.settings.datadir

    @property
    def worker(self) -> int | None:
        """This process's index among ``--workers`` (``None`` when there are none): work one
        process should do for all, such as ordering a certificate, is done by worker 0."""
        return self._server.worker

    @property
    def ports(self) -> list[int]:
        """The ports this process listens on (the bound ones when the configuration said 0)."""
        return self._server.ports

    @property
    def reloads(self) -> int:
        """How many reloads took effect since the start."""
        return self._server.reloads

    def state(self, extension: str) -> dict[str, Any]:
        """``extension``'s dictionary for the live configuration: what it put there with
        ``ctx.state(extension)`` while that configuration was built."""
        return self._server.runtime.extensions.state(extension)

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` on the server's event loop (from a hook, which is synchronous)."""
        loop = self._server.loop
        assert loop is not None, "the server is not running"
        return loop.create_task(coro)

    def call_later(self, delay: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        """Call ``callback`` on the server's event loop in ``delay`` seconds."""
        loop = self._server.loop
        assert loop is not None, "the server is not running"
        return loop.call_later(delay, callback)

    def __repr__(self) -> str:
        return f"<ServerView ports={self.ports} worker={self.worker}>"
