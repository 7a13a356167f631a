"""Exceptions a step may raise to end a request with a given status.

Private: not part of the extension API.
"""

from __future__ import annotations

from .headers import Headers


class BodyAborted(Exception):
    """Raised by a response body that cannot go on (a backend died mid-body…).

    The head is already sent, so the client cannot get an error page: the connection is
    aborted, so that no client takes the short body for a whole one. The message is logged as
    one error line, without a traceback; the body's producer has said what happened.
    """


class HTTPError(Exception):
    """Answer ``status`` (with optional extra ``headers``, e.g. ``WWW-Authenticate``).

    The response is the standard error page (spec §3.4); it does not go through output filters.
    """

    def __init__(self, status: int, message: str = "", headers: Headers | None = None) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.headers = headers or Headers()
