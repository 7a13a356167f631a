"""Which backend the tables use: the one named by the configuration that is live.

A backend extension claims its configuration build with :func:`claim` from its
``ocsi_extension_options`` hook: the backend goes into ocsipersist's state for that
configuration (``ctx.state``), where a second claim is a located error (exactly one backend per
configuration). It becomes the active backend when that configuration goes live
(``ocsi_server_started``, a successful ``ocsi_reloaded``), so a reload that fails later leaves
the running configuration's store in place. Where no server announces it (a configuration
served in memory by the test kit), the latest claim is used.

The tables are reached without a server at hand (``ocsipersist.table("t")`` in application
code), so the active backend is one process-wide reference, as in Ocsigen.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from ocsi import ConfigError, LoadContext

from .backend import Backend

B = TypeVar("B", bound=Backend)

#: ocsipersist's key in a configuration's per-extension state.
STATE = "ocsi-ext-ocsipersist"


class NoBackend(RuntimeError):
    """A table was used with no backend configured."""


_active: Backend | None = None
_latest: Backend | None = None


def claim(backend: Backend, ctx: LoadContext) -> None:
    """Make ``backend`` the store of the configuration being built."""
    global _latest
    state = ctx.state(STATE)
    other = state.get("backend")
    if other is not None and other is not backend:
        raise ConfigError(f"two ocsipersist backends in one configuration: {other.name} "
                          f"(at {state['where']}) and {backend.name}", where=ctx.where,
                          hint="keep one <extension> of ocsi-ext-ocsipersist-sqlite or "
                               "ocsi-ext-ocsipersist-pgsql")
    state["backend"], state["where"] = backend, ctx.where
    _latest = backend


#: Backends by what they open (a file, a database): one per process, kept across reloads so
#: a reload does not reopen the file or the pool.
_shared: dict[Hashable, Any] = {}


def claim_shared(key: Hashable, make: Callable[[], B], ctx: LoadContext) -> B:
    """The process's backend for ``key`` (made by ``make`` the first time), claimed for the
    configuration being built."""
    backend: B | None = _shared.get(key)
    if backend is None:
        backend = _shared[key] = make()
    claim(backend, ctx)
    return backend


def went_live(state: dict[str, Any]) -> None:
    """The configuration whose ocsipersist ``state`` this is is now the running one (one that
    names no backend has none)."""
    global _active, _latest
    _active = _latest = state.get("backend")


def stopped() -> None:
    """The server is stopping: its store is no longer the running one."""
    global _active
    _active = None


def current() -> Backend:
    backend = _active or _latest
    if backend is None:
        raise NoBackend("ocsipersist has no backend: name ocsi-ext-ocsipersist-sqlite or "
                        "ocsi-ext-ocsipersist-pgsql in an <extension> of the configuration")
    return backend
