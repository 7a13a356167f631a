"""The ASGI ``lifespan`` scope: ``startup`` before the configuration goes live (a failure
aborts the load or the reload, and the running configuration stays), ``shutdown`` when it is
retired. An application that does not speak lifespan (it raises at once, as the spec allows)
simply has none."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .http import ASGI

log = logging.getLogger("ocsi.ext.asgi")

STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0


class LifespanFailed(RuntimeError):
    pass


class Lifespan:
    def __init__(self, app: Any, where: str) -> None:
        self.app = app
        self.where = where
        #: Shared with every request's scope (copied into it).
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.supported = False

    async def _receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._from_app.put(message)

    async def _answer(self, timeout: float) -> dict[str, Any] | None:
        assert self._task is not None
        getter = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait({getter, self._task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        return None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        self._task = asyncio.get_running_loop().create_task(
            self.app(scope, self._receive, self._send))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._answer(STARTUP_TIMEOUT)
        if message is None:
            task = self._task
            if task.done():
                exc = task.exception() if not task.cancelled() else None
                log.info("%s: the application has no lifespan (%r)", self.where, exc)
                return  # not supported: fine
            task.cancel()
            raise LifespanFailed(f"{self.where}: lifespan startup did not finish within "
                                 f"{STARTUP_TIMEOUT:g} s")
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self.supported = True
            return
        if kind == "lifespan.startup.failed":
            raise LifespanFailed(f"{self.where}: the application's startup failed: "
                                 f"{message.get('message', '')}")
        raise LifespanFailed(f"{self.where}: unexpected lifespan message {kind!r}")

    async def shutdown(self) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        message = await self._answer(SHUTDOWN_TIMEOUT)
        if message is None or message.get("type") != "lifespan.shutdown.complete":
            log.error("%s: the application's lifespan shutdown did not complete: %r",
                      self.where, message)
        if not self._task.done():
            self._task.cancel()
