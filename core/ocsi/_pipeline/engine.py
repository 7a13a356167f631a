"""Running hosts, sites and steps in configuration order (Ocsigen's model, spec §3).

:func:`run_chain` walks one list of steps and returns what happened; :class:`Pipeline` picks
hosts, handles fall-through between hosts, retries and errors, and always returns a response.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._config.wildcard import Wildcard
from .._http.body import BytesBody
from .._http.exchange import exception_response
from .._http.hostport import split_host_port
from .._http.request import Request
from .._http.response import Response, error_response
from .answers import (
    DO_NOTHING,
    Answer,
    Around,
    ContinueWith,
    Found,
    Next,
    NotFound,
    RetryWith,
    Serve,
    ServeNow,
    State,
    StopAll,
    StopHost,
    StopSite,
    SubChain,
)
from .scope import SiteConfig
from .step import Step
from .urls import slash_redirect

log = logging.getLogger("ocsi.pipeline")

#: Where a request's stash keeps the host or site that answers it (what it is counted under).
SCOPE_KEY = "ocsi.scope"


class Control(enum.Enum):
    """Why a chain ended early."""

    STOP_SITE = 1
    STOP_HOST = 2
    STOP_ALL = 3
    SERVE_NOW = 4
    RETRY = 5


class Site(Step):
    """``<site path="a/b">``: runs its steps on requests under ``/a/b/``.

    ``/a/b`` itself gets a 301 to ``/a/b/`` before any step of the site runs. After the site,
    the steps that follow see the request as it was before it (sub-path and scope restored).
    """

    def __init__(self, path: tuple[str, ...], steps: Sequence[Step], charset: str | None = None,
                 where: str = "?") -> None:
        self.path = path
        self.steps = list(steps)
        self.charset = charset
        self.where = where
        #: This site's request counts (:meth:`ocsi.stats.Stats.bind`).
        self.counts: Any = None

    def children(self) -> list[Step]:
        return self.steps

    async def handle(self, request: Request, state: State) -> Answer:
        """Never called: the pipeline runs a site itself (:func:`run_chain`), since what follows
        a site sees the request as it was before it, which no answer can express."""
        raise TypeError("a <site> is run by the pipeline, not as an ordinary step")

    def enter(self, request: Request) -> Request | Response | None:
        """The request for the site's steps, a redirect, or ``None`` when the site is not concerned."""
        path = self.path
        d = request.depth
        segs = request.segments
        if not path:
            return request.replace(site_path=request.site_path, config=self._config(request.config))
        # the common case, a request for elsewhere, decided on the first segment
        if len(segs) <= d or segs[d] != path[0]:
            return None
        n = len(path)
        if tuple(segs[d : d + n]) != path:
            return None
        if len(segs) == d + n:
            return slash_redirect(request, request.raw_segments)
        return request.replace(
            depth=d + n,
            site_path=request.site_path + self.path,
            config=self._config(request.config),
        )

    def _config(self, config: SiteConfig) -> SiteConfig:
        if self.charset is None:
            return config
        return config.with_(charset=self.charset or None)


async def _close_found(state: State) -> None:
    if isinstance(state, Found):
        await state.response.body.aclose()


def _status_of(state: State) -> int:
    return state.status if isinstance(state, NotFound) else state.response.status


async def run_chain(
    steps: Sequence[Step], request: Request, state: State, scope: Any = None
) -> tuple[State, Request, Control | None, Any]:
    """Run ``steps`` in order; return ``(state, request, control, payload)``. ``scope``: the
    host or site they belong to, which an answer found here is counted under.

    ``control`` is ``None`` when the chain ran to its end; otherwise ``payload`` is the status
    (stop answers), the response (``SERVE_NOW``) or the new request (``RETRY``).
    """
    for index, step in enumerate(steps):
        if type(step) is Site:
            if isinstance(state, Found):
                continue  # a found page skips every later site, filters included
            inner = step.enter(request)
            if inner is None:
                continue
            if log.isEnabledFor(logging.INFO):
                log.info("site found: url %s matches %s (%s)", request.path,
                         "/".join(step.path) or "<root>", step.where)
            # counted under the last site entered, unless a step outside it answers (below);
            # the stash is the same dict in every copy of a request
            request.stash[SCOPE_KEY] = step
            if isinstance(inner, Response):
                return state, request, Control.SERVE_NOW, inner
            state, _, ctl, payload = await run_chain(step.steps, inner, state, step)
            if ctl is Control.STOP_SITE:
                state = NotFound(payload)
            elif ctl is not None:
                return state, request, ctl, payload
            continue
        try:
            ans = await step.handle(request, state)
        except BaseException as exc:
            if not hasattr(exc, "ocsi_where"):
                try:
                    exc.ocsi_where = step.where  # type: ignore[attr-defined]  # located for the log
                except AttributeError:
                    pass
            raise
        if ans is DO_NOTHING:
            continue
        # type(...) is: the answer types are final, and mypy narrows on it
        if type(ans) is Serve:
            if type(state) is not Found:  # a filter of a found page leaves it where it was
                request.stash[SCOPE_KEY] = scope
            state = Found(ans.response)
            if ans.request is not None:
                request = ans.request
        elif type(ans) is Next:
            await _close_found(state)
            state = NotFound(ans.status)
        elif type(ans) is SubChain:
            state, request, ctl, payload = await run_chain(ans.steps, ans.request or request, state,
                                                           scope)
            if ctl is not None:
                return state, request, ctl, payload
        elif type(ans) is ContinueWith:
            status = ans.status if ans.status is not None else _status_of(state)
            await _close_found(state)
            state = NotFound(status)
            request = ans.request
        elif type(ans) is ServeNow:
            if scope is not None:
                request.stash[SCOPE_KEY] = scope
            return state, request, Control.SERVE_NOW, ans.response
        elif type(ans) is StopSite:
            await _close_found(state)
            return NotFound(ans.status), request, Control.STOP_SITE, ans.status
        elif type(ans) is StopHost:
            await _close_found(state)
            return NotFound(ans.status), request, Control.STOP_HOST, ans.status
        elif type(ans) is StopAll:
            await _close_found(state)
            return NotFound(ans.status), request, Control.STOP_ALL, ans.status
        elif type(ans) is RetryWith:
            await _close_found(state)
            return NOT_FOUND_STATE, request, Control.RETRY, ans.request
        elif type(ans) is Around:
            return await _run_around(ans, steps[index + 1 :], request, state)
        else:
            raise TypeError(f"step {step.where} answered {ans!r}, which is not an answer")
    return state, request, None, None


NOT_FOUND_STATE = NotFound(404)


async def _run_around(
    ans: Around, rest_steps: Sequence[Step], request: Request, state: State
) -> tuple[State, Request, Control | None, Any]:
    """Give ``ans.wrapper`` the steps after it as ``rest``; carry out the stop, ``ServeNow`` or
    retry of the last call of ``rest`` that ended while the wrapper was running."""
    outcome: list[Any] = [None, None, request]  # control, payload, request of the last call
    live = True

    async def rest(req: Request, st: State) -> State:
        st, req, ctl, payload = await run_chain(rest_steps, req, st)
        if live:
            outcome[:] = [ctl, payload, req]
        if ctl is Control.SERVE_NOW:
            return Found(payload)
        return st

    result = await ans.wrapper(request, state, rest)
    live = False
    ctl, payload, request = outcome
    if ctl is Control.SERVE_NOW and isinstance(result, Found):
        payload = result.response
    return result, request, ctl, payload


@dataclass(slots=True, frozen=True)
class HostPattern:
    """One ``hostfilter`` entry: a case-insensitive name pattern and an optional port.

    ``*`` is any run of characters, matched as a :class:`Wildcard` (linear in the ``Host``
    however many stars, where a regex per star backtracks)."""

    text: str
    name: Wildcard | None  # None matches any name
    port: int | None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        name, written = split_host_port(text)
        port = None if written in (None, "*") else int(written)
        if name in ("", "*"):
            return cls(text, None, port)
        return cls(text, Wildcard(name.lower()), port)

    def claims(self, name: str) -> bool:
        """Whether ``name`` (a host name, any case) is one this pattern covers."""
        return self.name is None or self.name.matches(name.lower())

    def matches(self, host: str | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return host is None or self.name is None or self.name.matches(host.lower())


class Host:
    """``<host>``: its name patterns, its scope configuration and its steps."""

    def __init__(self, patterns: Sequence[HostPattern], steps: Sequence[Step], config: SiteConfig,
                 where: str = "?", name: str = "*") -> None:
        self.patterns = tuple(patterns)
        self.steps = list(steps)
        self.config = config
        self.where = where
        self.name = name
        #: This host's request counts (:meth:`ocsi.stats.Stats.bind`).
        self.counts: Any = None
        self._any = not self.patterns or any(
            p.name is None and p.port is None for p in self.patterns
        )

    def matches(self, host: str | None, port: int) -> bool:
        return self._any or any(p.matches(host, port) for p in self.patterns)


class Pipeline:
    """Answers a request from a list of hosts; never raises.

    ``max_retries`` bounds :class:`RetryWith` loops (Ocsigen's ``<maxretries>``: the first pass
    plus ``max_retries - 1`` retries). ``debug`` (``<debugmode/>``) puts exception text in 500
    bodies; otherwise it only goes to the error log.
    """

    def __init__(self, hosts: Sequence[Host], max_retries: int = 10, debug: bool = False,
                 exception_hook: Any = None) -> None:
        self.hosts = list(hosts)
        self.max_retries = max_retries
        self.debug = debug
        #: ``callable(exc, request) -> Response | None`` (the ``ocsi_exception_response`` hook).
        self.exception_hook = exception_hook
        #: Requests being answered, so that a configuration a reload replaced is cleaned up
        #: only once idle (:meth:`ocsi.runtime.Runtime.retire`, which sets :attr:`idle` to
        #: learn when that is). Counted here rather than in a wrapper: one coroutine fewer
        #: per request.
        self.in_flight = 0
        self.idle: asyncio.Event | None = None

    def steps(self) -> list[Step]:
        """Every step of every host, nested ones included (for lifecycles)."""
        out: list[Step] = []

        def walk(steps: Sequence[Step]) -> None:
            for s in steps:
                out.append(s)
                walk(s.children())

        for h in self.hosts:
            walk(h.steps)
        return out

    async def respond(self, request: Request) -> Response:
        """Run the hosts for ``request``; a step's exception becomes an error response."""
        self.in_flight += 1
        try:
            state: State = NOT_FOUND_STATE
            passes = 0
            while True:
                passes += 1
                if passes > self.max_retries:
                    log.error("Request %s %s loops: more than %d passes (<maxretries>)",
                              request.method, request.target, self.max_retries)
                    return error_response(500, "too many retries" if self.debug else None)
                request.retries = passes - 1
                retry = None
                last = None
                for host in self.hosts:
                    if not host.matches(request.host, request.port):
                        continue
                    last = host
                    request.config = host.config
                    request.depth = 0
                    request.site_path = ()
                    if log.isEnabledFor(logging.INFO):  # -vv: Ocsigen's decision trace
                        log.info("host found! %s:%d matches %s (%s)", request.host,
                                 request.port, host.name, host.where)
                    state, _, ctl, payload = await run_chain(host.steps, request, state, host)
                    if ctl is None or ctl is Control.STOP_SITE or ctl is Control.STOP_HOST:
                        if isinstance(state, Found):
                            return state.response
                        continue
                    if ctl is Control.SERVE_NOW:
                        served: Response = payload
                        return served
                    if ctl is Control.STOP_ALL:
                        request.stash.setdefault(SCOPE_KEY, host)
                        return error_response(payload)
                    retry = payload  # Control.RETRY
                    break
                if retry is None:
                    # found nowhere: counted under the last site entered, else the last host
                    if last is not None and SCOPE_KEY not in request.stash:
                        request.stash[SCOPE_KEY] = last
                    return error_response(_status_of(state))
                request = retry
                state = NOT_FOUND_STATE
        except Exception as exc:  # noqa: BLE001 - a step must never take the server down
            return exception_response(exc, request, self.debug, self.exception_hook)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self.idle is not None:
                self.idle.set()


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    """A small helper for extensions and tests."""
    from .._http.headers import Headers

    return Response(status, Headers([("content-type", content_type)]), BytesBody(text.encode()))
