"""Exceptions a step may raise to end a request with a given status."""

from __future__ import annotations

from .headers import Headers


class HTTPError(Exception):
    """Answer ``status`` (with optional extra ``headers``, e.g. ``WWW-Authenticate``).

    The response is the standard error page (spec §3.4); it does not go through output filters.
    """

    def __init__(self, status: int, message: str = "", headers: Headers | None = None) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.headers = headers or Headers()
