"""Request states and step answers: Ocsigen's extension protocol (spec §3.3), typed.

A step receives the current *state*, either :class:`NotFound` (no page yet, with the status
to report if nothing is found) or :class:`Found` (a response exists: later steps act as output
filters), and returns an *answer* telling the pipeline what to do next.

These classes live in the core and are never reloaded, so ``isinstance`` keeps working for
extension code imported before and after a reload.

Private: not part of the extension API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .._http.request import Request
    from .._http.response import Response
    from .step import Step


# -- states ----------------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class NotFound:
    """No page yet; ``status`` is what the client gets if nothing else answers (initially 404)."""

    status: int = 404


@dataclass(slots=True, frozen=True)
class Found:
    """A response has been produced; steps that see this state may filter or replace it."""

    response: Response


State = Union[NotFound, Found]
NOT_FOUND = NotFound(404)


# -- answers ---------------------------------------------------------------------------------------
class _DoNothing:
    """Next step, same state. Content generators answer this on a :class:`Found` state."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DO_NOTHING"


DO_NOTHING = _DoNothing()


@dataclass(slots=True, frozen=True)
class Serve:
    """A response: later steps get ``Found(response)`` (Ocsigen's ``Ext_found``).

    Filters answer ``Serve`` with the response they rewrote. With ``request`` set, later steps
    also see that request (``Ext_found_continue_with``).
    """

    response: Response
    request: Request | None = None


@dataclass(slots=True, frozen=True)
class ServeNow:
    """Send ``response`` at once, skipping every later step, site and host (``Ext_found_stop``)."""

    response: Response


@dataclass(slots=True, frozen=True)
class Next:
    """Not found here: the next step gets ``NotFound(status)`` (``Ext_next``)."""

    status: int = 404


@dataclass(slots=True, frozen=True)
class ContinueWith:
    """Go on with a changed request, and ``NotFound(status)`` (or the current status).

    As in Ocsigen, this also turns a :class:`Found` state back into :class:`NotFound`: answer
    :class:`Serve` with ``request=`` to keep the page.
    """

    request: Request
    status: int | None = None


@dataclass(slots=True, frozen=True)
class StopSite:
    """Leave the current site; the steps after it run with the request as it was before it."""

    status: int = 404


@dataclass(slots=True, frozen=True)
class StopHost:
    """Leave this host; the next eligible host gets the request."""

    status: int = 404


@dataclass(slots=True, frozen=True)
class StopAll:
    """Answer the error ``status`` now (no later step, site or host runs)."""

    status: int = 404


@dataclass(slots=True, frozen=True)
class RetryWith:
    """Restart host selection with a new request (bounded by ``<maxretries>``)."""

    request: Request


@dataclass(slots=True, frozen=True)
class SubChain:
    """Run ``steps`` here, in place, as if they were written at this point (``Ext_sub_result``).

    Used by containers such as ``<if>``: the nested steps see and change the same state, and
    their stop answers propagate exactly as those of ordinary steps.
    """

    steps: Sequence[Step]
    request: Request | None = None


#: ``rest(request, state) -> state``: the steps after an :class:`Around` answer, run again.
Rest = Callable[["Request", State], Awaitable[State]]


@dataclass(slots=True, frozen=True)
class Around:
    """Run the steps that follow this one in its list (its host, site or container) through
    ``wrapper(request, state, rest)``, which returns the state they end with.

    ``rest(request, state)`` runs those steps and returns the state at their end; the wrapper
    may call it never (it answers itself: a cache hit), once, with a changed request (a
    conditional one), or later again from a task of its own (a background revalidation). What
    the wrapper returns is the state after them: a cache stores the response it got and returns
    a copy. A stop, ``ServeNow`` or retry among those steps is carried out after the wrapper
    returns (``ServeNow`` with the wrapper's response when it returns ``Found``), as if the
    wrapper were not there; one from a call still running when the wrapper returned is ignored.
    """

    wrapper: Callable[[Request, State, Rest], Awaitable[State]]


Answer = Union[_DoNothing, Serve, ServeNow, Next, ContinueWith, StopSite, StopHost, StopAll,
               RetryWith, SubChain, Around]
