"""One exchange: a request in, its response out, whatever protocol carries them.

HTTP/1.1 (:mod:`.protocol`) and HTTP/2 (:mod:`.h2conn`) parse requests and write responses
their own way; everything in between is here, once: calling the application (the pipeline),
turning what it raises into a response (:func:`exception_response`, which the pipeline uses
for its steps too), counting the request in flight, closing the response's body and writing
the access record. A protocol hands :func:`answer` a :class:`Request` and a :class:`Link`
that knows how to put a response on its wire.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .access import AccessRecord
from .body import BytesBody, FileBody
from .errors import HTTPError
from .request import BodyTooLarge, ClientDisconnected, Request
from .response import Response, body_error_status, error_response

if TYPE_CHECKING:
    import asyncio

    from .shared import Shared

__all__ = ["Link", "aclose_body", "answer", "close_plain_body", "emit", "exception_response"]

log = logging.getLogger("ocsi.http")
#: Where exceptions of the application are told (the pipeline's steps raise them).
_app_log = logging.getLogger("ocsi.pipeline")

#: ``callable(exc, request) -> Response | None``: the ``ocsi_exception_response`` hook.
ExceptionHook = Callable[[Exception, Request], "Response | None"]


class Link(Protocol):
    """What a connection (or an HTTP/2 stream) gives the exchange."""

    #: The connection's loop (its ``time()`` measures the answer's duration).
    _loop: asyncio.AbstractEventLoop

    def owed(self) -> int:
        """A status the request's body has earned by now (413, 400, 408), 0 if none: it
        replaces a 500 and the answer to a body that could not be read."""
        ...

    async def deliver(self, req: Request | None, response: Response) -> tuple[int, int]:
        """Write ``response``; return the status written (a 500 may replace an answer that
        could not be sent) and the body bytes handed to the transport."""
        ...


def exception_response(exc: Exception, request: Request, debug: bool = False,
                       hook: ExceptionHook | None = None) -> Response:
    """The response for an exception raised while answering ``request``.

    ``HTTPError`` carries its status; a body the client did not send whole is the client's
    doing (413, 408, 400); ``PermissionError`` is 403; then ``hook`` (the extensions'
    ``ocsi_exception_response``) may answer; anything else is logged and becomes a 500, with
    the traceback in the body only under ``debug`` (``<debugmode/>``).
    """
    if isinstance(exc, HTTPError):
        resp = error_response(exc.status, str(exc) if debug else None)
        for name, value in exc.headers:
            resp.headers.add(name, value)
        return resp
    if isinstance(exc, (BodyTooLarge, ClientDisconnected)):
        _app_log.info("request %s %s: body not received: %r", request.method, request.target,
                      exc)
        return error_response(body_error_status(exc))
    if isinstance(exc, PermissionError):
        return error_response(403)
    if hook is not None:
        try:
            mapped = hook(exc, request)
        except Exception:  # noqa: BLE001
            _app_log.exception("ocsi_exception_response hook failed")
            mapped = None
        if mapped is not None:
            return mapped
    where = getattr(exc, "ocsi_where", "?")
    _app_log.error("Error while handling request %s %s (step at %s)", request.method,
                   request.target, where, exc_info=exc)
    return error_response(500, "".join(traceback.format_exception(exc)) if debug else None)


async def _failed(exc: Exception, req: Request, link: Link) -> Response:
    """The response for what the application raised."""
    response = exception_response(exc, req)
    if isinstance(exc, (BodyTooLarge, ClientDisconnected)):
        owed = link.owed()
        if owed:
            return error_response(owed)
    return await _owed(response, link) if response.status >= 500 else response


async def _owed(response: Response, link: Link) -> Response:
    """A 500 gives way to what the request's body earned (413, 400, 408), if anything."""
    owed = link.owed()
    if owed:
        await aclose_body(response)
        return error_response(owed)
    return response


async def answer(m: Shared, link: Link, req: Request | None, t0: float, m0: float,
                 response: Response | None = None) -> None:
    """Answer ``req`` on ``link``: the application's response (or ``response`` when the
    connection already knows it), counted in flight, its body closed, its access record
    written. ``req`` is ``None`` only for a stream refused before a request could be built (no
    record then). ``t0``/``m0``: wall-clock and loop time at which the head was complete.

    The application's exceptions become a response (:func:`exception_response`); a 500 gives
    way to what the request's body earned (:meth:`Link.owed`)."""
    m.in_flight += 1
    status = sent = 0
    try:
        if response is None:
            assert req is not None
            try:
                response = await m.app(req)
                if not isinstance(response, Response):
                    raise TypeError(f"the application returned {response!r}, not a Response")
            except Exception as exc:  # noqa: BLE001 - the client gets an answer
                response = await _failed(exc, req, link)
            else:
                if response.status >= 500:
                    response = await _owed(response, link)
        status, sent = await link.deliver(req, response)
    finally:
        if response is not None and not close_plain_body(response):
            await aclose_body(response)
        m.in_flight -= 1
        if m.access_log is not None and response is not None and req is not None:
            emit(m, AccessRecord.answered(req, t0, req.client, status or response.status, sent,
                                          link._loop.time() - m0, req.port, req.secure))


def emit(m: Shared, record: AccessRecord) -> None:
    """Hand ``record`` to the access log, which may not take the connection down."""
    cb = m.access_log
    if cb is None:
        return
    try:
        cb(record)
    except Exception:  # noqa: BLE001
        log.exception("access log callback failed")


async def aclose_body(response: Response) -> None:
    """Close a response's body, logging (never raising) what goes wrong."""
    try:
        await response.body.aclose()
    except Exception:  # noqa: BLE001
        log.exception("error closing the body of %r", response)


def close_plain_body(response: Response) -> bool:
    """Close the body if it is plain bytes or a file, without a coroutine; False otherwise.

    Every response is closed after it is sent; for the common bodies that needs no await, and
    skipping two coroutines per request is measurable. Exact types only: a subclass may have
    its own ``aclose``.
    """
    body = response.body
    t = type(body)
    if t is BytesBody:
        return True
    if t is FileBody:
        body.close()  # type: ignore[attr-defined]  # t is FileBody (exact type test)
        return True
    return False
