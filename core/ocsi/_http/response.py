"""The response a pipeline step produces, and the standard error responses.

Private: not part of the extension API.
"""

from __future__ import annotations

from http import HTTPStatus

from .body import EMPTY, Body, BytesBody
from .headers import Headers

_PHRASES: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``, ``""`` for an unregistered code (a dict
    lookup: ``HTTPStatus(status)`` goes through the enum machinery on every error page)."""
    return _PHRASES.get(status, "")


class Response:
    """Status, headers and a streamed body.

    ``Server``, ``Date`` and the framing headers (``Content-Length`` / ``Transfer-Encoding``) are
    added by the connection layer from the body, so a step never has to keep them consistent:
    a filter that replaces the body simply replaces :attr:`body`.
    """

    __slots__ = ("status", "headers", "body", "reason")

    def __init__(
        self,
        status: int = 200,
        headers: Headers | list[tuple[str, str]] | None = None,
        body: Body | bytes | None = None,
        reason: str | None = None,
    ) -> None:
        self.status = status
        if headers is None:
            headers = Headers()
        elif not isinstance(headers, Headers):
            headers = Headers(headers)
        self.headers = headers
        if body is None:
            body = EMPTY
        elif isinstance(body, (bytes, bytearray, memoryview)):
            body = BytesBody(bytes(body))
        self.body: Body = body
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers.get('content-type')!r}>"


def error_response(status: int, detail: str | None = None) -> Response:
    """The final error page (spec §3.4): ``Error: <reason>`` as plain text.

    ``detail`` (exception text) is only passed under ``<debugmode/>``; it never reaches a client
    otherwise, so file-system paths and internals do not leak.
    """
    if detail:
        text = f"Error: {reason_phrase(status) or status}\n\n{detail}"
        data = text.encode("utf-8", "replace")
    else:
        data = _error_page(status)
    # fresh headers and body each time: steps and filters may change them
    return Response(status, Headers.from_lower([_ERROR_TYPE]), BytesBody(data))


_ERROR_TYPE = ("content-type", "text/plain; charset=utf-8")
_ERROR_PAGES: dict[int, bytes] = {}


def _error_page(status: int) -> bytes:
    """``Error: <reason>`` encoded once per status (404s are a hot path: scanners, typos)."""
    data = _ERROR_PAGES.get(status)
    if data is None:
        data = f"Error: {reason_phrase(status) or status}".encode("utf-8", "replace")
        if len(_ERROR_PAGES) < 1000:  # statuses are ints a step chooses: bound it anyway
            _ERROR_PAGES[status] = data
    return data


def body_error_status(exc: BaseException) -> int:
    """The status for a request body that could not be read: 413, 408 or 400."""
    from .request import BodyTooLarge, RequestTimeout

    if isinstance(exc, BodyTooLarge):
        return 413
    return 408 if isinstance(exc, RequestTimeout) else 400
