"""A Runtime: everything derived from one configuration, built completely before it goes live.

Building parses the files, loads the extensions the configuration names, parses hosts into
steps and provisions them. Any failure cleans up what was provisioned and raises, so the server
keeps the runtime it had. A retired runtime is cleaned up once its in-flight requests are done.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pluggy

from ._config.document import Builder, Configuration
from ._http.request import Request
from ._http.response import Response
from ._pipeline.engine import Host, Pipeline
from ._pipeline.step import Step

log = logging.getLogger("ocsi.main")


class Runtime:
    def __init__(self, config: Configuration, pm: pluggy.PluginManager) -> None:
        self.config = config
        self.settings = config.settings
        self.pm = pm
        #: The extensions this configuration enables: every hook call goes through it.
        self.extensions = config.extensions
        mapped = bool(self.extensions.caller("ocsi_exception_response").get_hookimpls())
        self.pipeline = Pipeline(
            config.hosts,
            max_retries=self.settings.maxretries,
            debug=self.settings.debugmode,
            exception_hook=self._map_exception if mapped else None,
        )
        self._provisioned: list[Step] = []
        #: ``(where, exception)`` of every step whose cleanup raised (logged, and kept so that
        #: a test can fail on an unclean shutdown).
        self.cleanup_errors: list[tuple[str, BaseException]] = []

    @classmethod
    def from_hosts(cls, hosts: Sequence[Host], pm: pluggy.PluginManager, **settings: Any) -> Runtime:
        """A runtime from Python objects (embedding and tests): no XML involved."""
        from ._config.settings import ServerSettings
        from ._extensions.enabled import EnabledExtensions

        s = ServerSettings(**settings)
        return cls(Configuration("<python>", s, list(hosts), EnabledExtensions(pm)), pm)

    @property
    def hosts(self) -> list[Host]:
        return self.pipeline.hosts

    def _map_exception(self, exc: Exception, request: Request) -> Response | None:
        """``ocsi_exception_response`` through pluggy's caller (``firstresult``: the first
        implementation that answers wins); exceptions are rare, so the subset is worked out
        per call, and an extension a later build registered is never asked."""
        result = self.extensions.hook.ocsi_exception_response(exc=exc, request=request)
        return result if isinstance(result, Response) else None

    @property
    def in_flight(self) -> int:
        """Requests this configuration is answering."""
        return self.pipeline.in_flight

    @property
    def respond(self) -> Callable[[Request], Awaitable[Response]]:
        """What answers one request: the pipeline, which counts it so that a retired runtime
        is cleaned up only when idle."""
        return self.pipeline.respond

    async def provision(self) -> None:
        for step in self.pipeline.steps():
            try:
                await step.provision()
            except BaseException:
                log.error("provisioning the step at %s failed", step.where)
                await self.cleanup()
                raise
            self._provisioned.append(step)

    async def cleanup(self) -> None:
        steps, self._provisioned = self._provisioned, []
        for step in reversed(steps):
            try:
                await step.cleanup()
            except Exception as exc:  # noqa: BLE001 - cleanup must go on
                log.exception("cleanup of the step at %s failed", step.where)
                self.cleanup_errors.append((step.where, exc))

    async def retire(self, grace: float = 60.0) -> None:
        """Clean up once no request uses this runtime any more (at most ``grace`` seconds)."""
        if self.in_flight:
            idle = self.pipeline.idle = asyncio.Event()
            try:
                await asyncio.wait_for(idle.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("retiring a configuration with %d requests still running", self.in_flight)
        await self.cleanup()


def build_configuration(pm: pluggy.PluginManager, path: str, data: bytes | None = None) -> Configuration:
    return Builder(pm, path, data).build()


async def build_runtime(pm: pluggy.PluginManager, path: str, data: bytes | None = None) -> Runtime:
    runtime = Runtime(build_configuration(pm, path, data), pm)
    await runtime.provision()
    return runtime
