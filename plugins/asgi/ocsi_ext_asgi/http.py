"""One HTTP request through an ASGI application (the ``http`` scope of ASGI 3, spec 2.4).

The request body goes to ``receive()`` as it arrives (``more_body``), read from the client
only as fast as the application asks. What the application ``send()``s goes out as it comes:
``send`` waits until the previous piece was taken, so a streaming application never runs
ahead of a slow client. ``http.disconnect`` is what ``receive()`` gives once the answer is
over or the client has gone. An application that raises, answers twice, never answers or
sends something that is not ASGI gets a clean 500 (or, mid-body, an aborted connection) and
one error line with the traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import types
from collections.abc import AsyncIterator, Generator
from typing import Any

from ocsi import (
    BodyAborted,
    BytesBody,
    FileBody,
    Headers,
    Request,
    Response,
    StreamBody,
)

__all__ = ["ASGIError", "ClientGone", "HTTPCycle", "http_scope"]

log = logging.getLogger("ocsi.ext.asgi")

ASGI = {"version": "3.0", "spec_version": "2.4"}
#: ocsi's version names that ASGI spells otherwise ("1.1", "1.0" and "3" are the same).
_VERSIONS = {"2.0": "2"}


#: Response fields the connection layer writes itself, from the body.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))


class ASGIError(RuntimeError):
    """The application broke the ASGI protocol."""


class ClientGone(OSError):
    """``send()`` after the client went away (the ASGI spec's OSError)."""


def http_scope(request: Request, state: dict[str, Any] | None) -> dict[str, Any]:
    """The ``http`` scope (``websocket.py`` adapts it). Built in one dictionary display, the
    values taken as the request holds them: every lookup here is paid on every request."""
    depth = request.depth
    segments = request.segments
    query = request.query
    version = request.version
    return {
        "type": "http",
        "asgi": ASGI,
        "http_version": _VERSIONS.get(version, version),  # the spec's names
        "method": request.method,
        "scheme": "https" if request.secure else "http",
        "path": "/" + "/".join(segments),
        "raw_path": request.raw_path.encode("latin-1", "replace"),
        "query_string": query.encode("latin-1", "replace") if query else b"",
        "root_path": "/" + "/".join(segments[:depth]) if depth else "",
        "headers": request.headers.raw(),
        "client": (request.client, 0),
        "server": (request.host or "", request.port),
        "state": dict(state) if state else {},  # a shallow copy per request, as the spec says
        "extensions": {"http.response.pathsend": {}, "http.response.trailers": {}},
    }


@types.coroutine
def _one_turn() -> Generator[None, None, None]:
    """Give the loop one turn (a bare yield: no future, no timer)."""
    yield


class HTTPCycle:
    """``receive`` and ``send`` for one request, and what the step reads of the answer.

    Nothing here is made per request unless the request needs it: the step gives the loop one
    turn, which runs the application's first step (a task scheduled before it), and most
    applications have answered by then; a future to wait on is made only when they have not,
    and another only when ``receive()`` has to wait for the end of the exchange."""

    __slots__ = ("request", "head", "first", "ready", "_slot", "_handoff", "_watching",
                 "complete", "trailers_expected", "trailers", "_gone", "_gone_waiter", "_body_done")

    def __init__(self, request: Request) -> None:
        self.request = request
        #: status, fields without the framing ones, and the announced length
        self.head: tuple[int, list[tuple[str, str]], int | None] | None = None
        #: The first piece of the body, kept without a queue (most answers are one piece).
        self.first: tuple[bytes | FileBody, bool] | None = None
        #: Set once the head and the first piece are there, or the application is done; made
        #: only when the application had not answered in its first step.
        self.ready: asyncio.Future[None] | None = None
        #: The next piece after the first, until the step takes it: send() waits while it is
        #: taken (back-pressure, one piece ahead). ``_handoff`` exists only while one side
        #: waits: the step for a piece (the slot is empty) or send() for the place (it is
        #: full), never both.
        self._slot: tuple[bytes | FileBody, bool] | None = None
        self._handoff: asyncio.Future[None] | None = None
        #: whether the application's end wakes ready / the reader (a done callback, added once)
        self._watching = False
        self.complete = False
        #: http.response.trailers: announced in the start message, their fields once sent
        self.trailers_expected = False
        self.trailers: list[tuple[str, str]] | None = None
        #: The exchange is over (answered, abandoned or the client left): receive() says
        #: http.disconnect. ``_gone_waiter`` exists only while a receive() waits for that.
        self._gone = False
        self._gone_waiter: asyncio.Future[None] | None = None
        self._body_done = False

    def end(self) -> None:
        """The exchange is over for the application."""
        self._gone = True
        _wake(self._gone_waiter)
        _wake(self._handoff)  # a send() waiting for a reader that will not come: ClientGone

    # -- the application's side ------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if not self._body_done:
            try:
                chunk = await self.request.body.next_chunk()
            except Exception:  # noqa: BLE001 - the client's doing: it went away or sent too much
                self._body_done = True
                self.end()
                return {"type": "http.disconnect"}
            if not chunk:
                self._body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            more = not self.request.body.complete
            if not more:
                self._body_done = True
            return {"type": "http.request", "body": chunk, "more_body": more}
        if not self._gone and not self.request.client_gone:
            # the answer ends, or the client leaves first (a long poll, a slow stream)
            w = self._gone_waiter
            if w is None:
                w = self._gone_waiter = asyncio.get_running_loop().create_future()
            client = asyncio.ensure_future(self.request.wait_client_gone())
            try:
                await asyncio.wait((w, client), return_when=asyncio.FIRST_COMPLETED)
            finally:
                client.cancel()
        self.end()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self._gone and not self.complete:
            raise ClientGone("the client has gone")
        kind = message.get("type")
        if kind == "http.response.body":
            if self.head is None:
                raise ASGIError("http.response.body before http.response.start")
            if self.complete:
                raise ASGIError("http.response.body after the response was complete")
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = bytes(body)
            if self.trailers_expected:
                await self._put((body, True))  # the trailers end it
                return
            more = bool(message.get("more_body", False))
            self.complete = not more
            await self._put((body, more))
        elif kind == "http.response.start":
            if self.head is not None:
                raise ASGIError("http.response.start sent twice")
            status = message.get("status")
            if type(status) is not int or not 200 <= status <= 999:
                raise ASGIError(f"http.response.start with status {status!r}")
            trailers = self.trailers_expected = bool(message.get("trailers", False))
            # One pass: decoded (str(…, "latin-1") takes any bytes-like value), the framing
            # fields the connection layer owns taken out, a valid length kept for the body.
            fields = []
            length = None
            for n, v in message.get("headers", ()):
                name = str(n, "latin-1").lower()
                value = str(v, "latin-1")
                if name in _FRAMING:
                    if name != "content-length":
                        continue
                    if value.strip().isdecimal():
                        if not trailers:  # trailers need chunked framing
                            length = int(value)
                        continue
                fields.append((name, value))
            self.head = (status, fields, length)
        elif kind == "http.response.trailers":
            if not self.trailers_expected or self.complete:
                raise ASGIError("http.response.trailers not announced, or after the end")
            self.trailers = (self.trailers or []) + [
                (bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                for n, v in message.get("headers", ())]
            if not message.get("more_trailers", False):
                self.complete = True
                await self._put((b"", False))
        elif kind == "http.response.pathsend":
            if self.head is None or self.complete:
                raise ASGIError("http.response.pathsend out of place")
            path = message.get("path")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ASGIError(f"http.response.pathsend with path {path!r}")
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self.complete = True
            await self._put((FileBody(fd, 0, os.fstat(fd).st_size), False))
        else:
            raise ASGIError(f"unknown message {kind!r} in an http scope")

    async def _put(self, piece: tuple[bytes | FileBody, bool]) -> None:
        if self.first is None:
            self.first = piece
            ready = self.ready
            if ready is not None and not ready.done():
                ready.set_result(None)
            return
        while self._slot is not None:
            if self._gone:
                raise ClientGone("the client has gone")
            w = self._handoff = asyncio.get_running_loop().create_future()
            await w
        self._slot = piece
        _wake(self._handoff)

    def _watch(self, task: asyncio.Task[None]) -> None:
        if not self._watching:
            self._watching = True
            task.add_done_callback(self._app_done)

    def _app_done(self, task: asyncio.Task[None]) -> None:
        _wake(self.ready)
        _wake(self._handoff)

    async def _take(self, task: asyncio.Task[None]) -> tuple[bytes | FileBody, bool] | None:
        """The next piece; None when the application ended without sending it."""
        while True:
            piece = self._slot
            if piece is not None:
                self._slot = None
                _wake(self._handoff)
                return piece
            if task.done():
                return None
            self._watch(task)
            r = self._handoff = asyncio.get_running_loop().create_future()
            await r

    # -- the step's side ---------------------------------------------------------------------------
    async def response(self, task: asyncio.Task[None], where: str) -> Response | None:
        """The answer, once its head (and first piece) is known; None when the application
        gave no head (it finished, or raised: logged).

        The application's task was scheduled before this runs, so one turn of the loop runs
        its first step; only an application still working after that is waited for."""
        await _one_turn()
        if self.first is None and not task.done():
            ready = self.ready = asyncio.get_running_loop().create_future()
            self._watch(task)
            await ready
        if self.first is None or self.head is None:
            _report(task, where, "before answering")
            return None
        status, fields, length = self.head
        piece, more = self.first
        if type(piece) is bytes:
            if not more and not self.trailers_expected:
                self.end()
                return Response(status, Headers.from_lower(fields), BytesBody(piece))
        else:
            return Response(status, Headers.from_lower(fields), piece)

        async def rest() -> AsyncIterator[bytes]:
            yield piece
            while True:
                got = await self._take(task)
                if got is None:
                    _report(task, where, "in the middle of its answer")
                    raise BodyAborted(f"{where}: the application stopped in the middle of its answer")
                chunk, again = got
                if isinstance(chunk, FileBody):
                    await chunk.aclose()
                    raise BodyAborted(f"{where}: pathsend after body pieces")
                yield chunk
                if not again:
                    body.trailers = self.trailers or None
                    return

        async def close() -> None:
            self.end()

        body = StreamBody(rest(), length, close)
        return Response(status, Headers.from_lower(fields), body)

    async def discard(self, task: asyncio.Task[None]) -> None:
        """Read and drop what the application still sends (its 404 page, when the following
        steps answer instead)."""
        try:
            # ``complete`` is set before the last piece is put: it is over once that is taken
            while not (self.complete and self._slot is None):
                got = await self._take(task)
                if got is None:
                    break
                piece, _ = got
                if isinstance(piece, FileBody):
                    await piece.aclose()
        finally:
            self.end()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _report(task: asyncio.Task[None], where: str, when: str) -> None:
    exc = task.exception() if not task.cancelled() else None
    if exc is None:
        log.error("%s: the application returned %s", where, when)
    else:
        log.error("%s: the application failed %s", where, when, exc_info=exc)
