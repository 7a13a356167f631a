"""The per-request unit: one configuration element becomes one :class:`Step`.

Steps run in the order of the configuration file (not plugin registration order, which is why
they are plain async objects and not pluggy hooks). A step's optional lifecycle follows Caddy's:
:meth:`provision` runs once before the runtime that holds it goes live (open pools, warm
caches) and :meth:`cleanup` after that runtime is retired or failed to start.

Private: not part of the extension API.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._http.request import Request
    from .answers import Answer, State


class Step(abc.ABC):
    """Base class for pipeline steps.

    Subclasses implement :meth:`handle` (a step without it cannot be made). ``where`` is
    ``file:line`` of the element the step was built from; the pipeline puts it in the error log
    when the step raises.
    """

    where: str = "?"

    @abc.abstractmethod
    async def handle(self, request: Request, state: State) -> Answer:
        """What this step does with ``request`` given the state so far (``NotFound`` with a
        status, or ``Found`` with a response): one of the answers of :mod:`ocsi`."""

    async def provision(self) -> None:
        """Prepare resources before the runtime goes live. Raising aborts the (re)load."""

    async def cleanup(self) -> None:
        """Release resources when the runtime is retired. Must not raise."""

    def children(self) -> list[Step]:
        """Nested steps, so lifecycles reach steps inside containers such as ``<if>``."""
        return []


class FunctionStep(Step):
    """Wrap ``async def fn(request, state) -> Answer`` as a step (handy for embedding and tests)."""

    def __init__(self, fn: Callable[[Request, State], Awaitable[Answer]],
                 where: str = "<python>") -> None:
        self._fn = fn
        self.where = where

    async def handle(self, request: Request, state: State) -> Answer:
        return await self._fn(request, state)
