"""Every hook an ocsi extension can implement, grouped by phase.

An extension is a module (the object its ``ocsi.extensions`` entry point names) with functions
marked ``@ocsi.hookimpl`` whose names are among these. The server registers it with its own
``pluggy.PluginManager("ocsi")`` and calls ``check_pending()``: a misspelt hook name is a
startup error, not a silently ignored function.

Hooks are synchronous and run at configuration and lifecycle time. Per-request work is not a
hook: element parsers return :class:`ocsi.Step` objects, run in configuration order.

Unless stated otherwise every implementation is called and the results are collected in a list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._config.context import LoadContext, ParseContext
    from ._config.xml import Element
    from ._http.request import Request
    from ._http.response import Response
    from ._pipeline.step import Step
    from .serverview import ServerView

hookspec = pluggy.HookspecMarker("ocsi")

#: ``parser(element, ctx) -> Step`` for one element name.
ElementParser = Callable[["Element", "ParseContext"], "Step"]
#: ``handler(args: list[str]) -> str | None`` (may be ``async``): a command-pipe command.
CommandHandler = Callable[[list[str]], Any]


# -- configuration -------------------------------------------------------------------------------
@hookspec
def ocsi_elements() -> Mapping[str, ElementParser]:
    """The configuration elements this extension owns inside ``<host>`` and ``<site>``.

    Called each time a configuration is built, only for the extensions that configuration
    names. Returns ``{tag: parser}``; ``parser(element, ctx)`` returns a :class:`ocsi.Step` or
    raises ``element.error(…)``. A tag owned by two extensions is a configuration error naming
    both. Container elements (``<if>``) parse their children with ``ctx.parse_steps(...)``.
    """


@hookspec
def ocsi_extension_options(options: list[Element], ctx: LoadContext) -> Any:
    """The children of this extension's ``<extension>`` element (its global options).

    Called once per configuration build, for this extension only, with the children of the
    first ``<extension>`` element naming it (a repeated ``<extension>`` is a no-op). The value
    returned is available to element parsers as ``ctx.options("ocsi-ext-NAME")``. An extension
    that does not implement this hook rejects any child with a located error.
    """


@hookspec
def ocsi_scope_parsed(ctx: ParseContext) -> None:
    """A ``<host>`` or ``<site>`` has been parsed (Ocsigen's ``end_init``)."""


# -- lifecycle -----------------------------------------------------------------------------------
@hookspec
def ocsi_server_started(server: ServerView) -> None:
    """Listeners are open and the first configuration is live. ``server`` is the public view
    of the running server (:class:`ocsi.ServerView`): settings, data directory, worker index,
    the live configuration's per-extension state, the event loop to schedule work on."""


@hookspec
def ocsi_reloaded(server: ServerView, ok: bool, error: BaseException | None) -> None:
    """A reload finished: ``ok`` with the new configuration live, or failed with ``error``."""


@hookspec
def ocsi_server_stopping(server: ServerView) -> None:
    """Shutdown has begun: listeners are closed, in-flight requests are draining."""


@hookspec
def ocsi_clear_caches() -> None:
    """The ``clearcache`` command: drop every cache the extension keeps."""


# -- command pipe --------------------------------------------------------------------------------
@hookspec
def ocsi_commands() -> Mapping[str, CommandHandler]:
    """Commands for the command pipe, as ``{name: handler}``.

    A command ``PREFIX:NAME args…`` written to the pipe calls ``handler(args)`` of the extension
    whose entry-point name or distribution short name (``revproxy`` for ``ocsi-ext-revproxy``)
    is ``PREFIX``. The handler may be a coroutine function; what it returns is logged.
    """


# -- requests ------------------------------------------------------------------------------------
@hookspec(firstresult=True)
def ocsi_exception_response(exc: Exception, request: Request) -> Response | None:
    """Turn an exception raised by a step into a response (first non-``None`` wins).

    Exceptions nobody maps become a 500 with the traceback in the error log.
    """


@hookspec
def ocsi_request_finished(request: Request, status: int, sent: int, duration: float) -> None:
    """A response has been sent (metrics, custom logs). Keep it cheap: it runs per request."""
