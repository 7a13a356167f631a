"""ocsi-ext-asgi: Python web applications in sites, ASGI and WSGI, where Ocsigen has Eliom.

``<asgi app="package.module:app" [factory="true"] [fallthrough="false"]/>`` and ``<wsgi …/>``
in a ``<host>`` or ``<site>``. The application is imported anew on every configuration build
(a reload serves edited code), started with its lifespan before the configuration goes live,
and stopped after it is retired. See README.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

import ocsi
from ocsi import (
    DO_NOTHING,
    Element,
    Found,
    Next,
    ParseContext,
    Serve,
    Step,
    error_response,
    parse_bool,
    parse_size,
)

from .application import AppError, is_asgi3, load_app
from .http import HTTPCycle, http_scope
from .lifespan import Lifespan, LifespanFailed
from .websocket import MAX_MESSAGE, serve_websocket, wants_websocket
from .wsgi import WSGIRunner

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

__all__ = ["ASGIApp", "AppError", "WSGIApp", "load_app"]

log = logging.getLogger("ocsi.ext.asgi")


class ASGIApp(Step):
    def __init__(self, app: Any, spec: str, fallthrough: bool = True, lifespan: bool = True,
                 where: str = "?", max_message: int | None = MAX_MESSAGE) -> None:
        self.app = app
        self.spec = spec
        self.fallthrough = fallthrough
        self.where = where
        self.label = f"{where} ({spec})"
        self.max_message = max_message
        self.lifespan = Lifespan(app, f"{where} ({spec})") if lifespan else None
        self._tasks: set[asyncio.Task[None]] = set()

    async def provision(self) -> None:
        if self.lifespan is not None:
            await self.lifespan.startup()

    async def cleanup(self) -> None:
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    @property
    def state(self) -> dict[str, Any] | None:
        return self.lifespan.state if self.lifespan is not None else None

    def start_cycle(self, scope: dict[str, Any], receive: Any, send: Any) -> asyncio.Task[None]:
        """Run the application on one connection scope (HTTP request or WebSocket) as a task
        the step keeps until it is done, so shutdown can wait for it."""
        task = asyncio.get_running_loop().create_task(self.app(scope, receive, send))
        self._tasks.add(task)  # kept until done: background work after the answer too
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)

    def _keep(self, task: asyncio.Task[None]) -> None:
        """Hold ``task`` until it is done (the loop only holds tasks weakly)."""
        if not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._done)

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        if wants_websocket(request):
            return Serve(await serve_websocket(self, request))
        cycle = HTTPCycle(request)
        # Held by this frame while it runs, and by the step afterwards only if still running
        # (streaming, background work after the answer): most are done by then.
        task = asyncio.get_running_loop().create_task(
            self.app(http_scope(request, self.state), cycle.receive, cycle.send))
        try:
            response = await cycle.response(task, self.label)
        finally:
            self._keep(task)
        if response is None:
            return Serve(error_response(500))
        if response.status == 404 and self.fallthrough:
            if cycle.complete or task.done():
                await response.body.aclose()
                cycle.end()
            else:
                # still sending its page: read and drop the rest (closing the body would tell
                # the application that the client had gone, and fail its next send)
                self._keep(asyncio.get_running_loop().create_task(cycle.discard(task)))
            return Next(404)  # Ocsigen's not-found chain: the following steps may answer
        return Serve(response)


class WSGIApp(Step):
    def __init__(self, app: Any, spec: str, threads: int, queued: int | None,
                 fallthrough: bool = True, where: str = "?", minthreads: int = 0) -> None:
        self.app = app
        self.spec = spec
        self.fallthrough = fallthrough
        self.where = where
        self.minthreads = minthreads
        self.runner = WSGIRunner(app, f"{where} ({spec})", threads, queued)

    async def provision(self) -> None:
        await self.runner.start_threads(self.minthreads)

    async def cleanup(self) -> None:
        self.runner.close()

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        if self.runner.busy >= self.runner.limit:
            log.warning("%s: all %d WSGI threads and queue places are taken: 503",
                        self.where, self.runner.limit)
            busy = error_response(503)
            busy.headers.add("retry-after", "1")
            return Serve(busy)
        response = await self.runner.respond(request)
        if response is None:
            return Serve(error_response(500))
        if response.status == 404 and self.fallthrough:
            await response.body.aclose()
            return Next(404)
        return Serve(response)


def _hint(exc: AppError) -> str | None:
    if not exc.missing:
        return None  # found but broken: the traceback's own words say where
    return "the module is looked for on the import path and in <findlib path> directories"


def _watch_source(ctx: ParseContext, app: Any, spec: str) -> None:
    """With ``-w``, an edit of the application's module, or of a module beside it (its
    package), reloads it. Only ``.py`` files, as ``uvicorn --reload``: a log or a database
    written next to the code must not reload it (each write would)."""
    import sys

    module = sys.modules.get(spec.partition(":")[0])
    source = getattr(module, "__file__", None)
    if not source:
        return
    directory = os.path.dirname(source)
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for name in sorted(names):
        if name.endswith(".py"):
            ctx.watch(os.path.join(directory, name))


def _common(el: Element) -> tuple[str, bool, bool]:
    spec = el.require("app", hint='e.g. app="myproject.asgi:application"')
    factory = el.attr_value("factory", parse_bool, False)
    fallthrough = el.attr_value("fallthrough", parse_bool, True)
    return spec, factory, fallthrough


_APP_ATTRIBUTES = [
    ocsi.AttributeDoc("app", "package.module:attribute, found on the import path and in <findlib path> "
                      "directories; imported anew by each reload", required=True),
    ocsi.AttributeDoc("factory", "true: the attribute is a function returning the application", "`false`"),
    ocsi.AttributeDoc("fallthrough", "false: a 404 from the application is the answer; true: the "
                      "steps after it may answer instead", "`true`"),
]


@ocsi.documents(ocsi.ElementDoc(
    "asgi", "serves an ASGI 3 application (HTTP, WebSocket, lifespan)",
    attributes=[*_APP_ATTRIBUTES,
                ocsi.AttributeDoc("lifespan", "false: do not run the lifespan protocol", "`true`"),
                ocsi.AttributeDoc("websocket-max-message", "largest WebSocket message from a client (a "
                                  "size; infinity: no limit)", "`16MiB`")]))
def parse_asgi(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["app", "factory", "fallthrough", "lifespan", "websocket-max-message"])
    spec, factory, fallthrough = _common(el)
    try:
        app = load_app(spec, factory)
    except AppError as exc:
        raise el.error(str(exc), hint=_hint(exc)) from None
    _watch_source(ctx, app, spec)
    if not is_asgi3(app):
        raise el.error(f"{spec!r} is not an ASGI 3 application (async def app(scope, receive, send))",
                       hint="a WSGI application goes in <wsgi app=…/>")
    default: int | None = MAX_MESSAGE
    max_message = el.attr_value("websocket-max-message", parse_size, default)
    if max_message is not None and max_message < 1:
        raise el.error("websocket-max-message must be at least one byte")
    return ASGIApp(app, spec, fallthrough, el.attr_value("lifespan", parse_bool, True), el.where,
                   max_message)


@ocsi.documents(ocsi.ElementDoc(
    "wsgi", "serves a WSGI application, on threads (<maxthreads>)", attributes=_APP_ATTRIBUTES))
def parse_wsgi(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["app", "factory", "fallthrough"])
    spec, factory, fallthrough = _common(el)
    try:
        app = load_app(spec, factory)
    except AppError as exc:
        raise el.error(str(exc), hint=_hint(exc)) from None
    if is_asgi3(app):
        raise el.error(f"{spec!r} is an ASGI application", hint="use <asgi app=…/>")
    _watch_source(ctx, app, spec)
    s = ctx.settings
    return WSGIApp(app, spec, s.maxthreads, s.maxdetachedcomputationsqueued, fallthrough, el.where,
                   s.minthreads)


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"asgi": parse_asgi, "wsgi": parse_wsgi}


__all__ += ["LifespanFailed", "parse_asgi", "parse_wsgi"]
