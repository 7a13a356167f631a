"""What the access log and observers learn about each response the connection layer sends.

Private: not part of the extension API.
"""

from __future__ import annotations

from dataclasses import dataclass

from .request import Request


@dataclass(slots=True)
class AccessRecord:
    """One finished response, including the error responses the connection layer makes itself.

    The connection layer calls the access callback exactly once per response it sends (never for
    ``100 Continue``, never for connections closed without an answer). Fields the request did not
    provide (or that are unknown because the request could not be parsed) are ``None``.
    """

    #: Wall-clock time (``time.time()``) at which the request head was complete.
    time: float
    #: Peer address (``Request.client`` before any rewriting): IP without brackets, or ``unix:``.
    client: str
    method: str | None
    #: Request-target exactly as sent (``/a%20b?x=1``).
    target: str | None
    #: ``"1.0"``, ``"1.1"`` or ``"2.0"``.
    version: str | None
    #: ``Host`` header as sent, port included.
    host: str | None
    user_agent: str | None
    referer: str | None
    #: Raw ``X-Forwarded-For`` header, if any.
    forwarded_for: str | None
    status: int
    #: Body bytes written (head excluded; 0 for ``HEAD``).
    bytes_sent: int
    #: Seconds from the complete head to the last byte handed to the kernel.
    duration: float
    #: The request as the connection built it; ``None`` when it could not be parsed.
    request: Request | None
    #: Listening port and TLS flag of the listener that accepted the connection.
    port: int
    secure: bool

    @classmethod
    def answered(cls, req: Request, time: float, client: str, status: int, sent: int,
                 duration: float, port: int, secure: bool) -> AccessRecord:
        """The record of an answer to a parsed request (HTTP/1.1 and HTTP/2 alike). The three
        logged fields are found in one pass over the headers (the first of each, as
        ``Headers.get``)."""
        ua = referer = xff = None
        for name, value in req.headers:
            if name == "user-agent":
                if ua is None:
                    ua = value
            elif name == "referer":
                if referer is None:
                    referer = value
            elif name == "x-forwarded-for" and xff is None:
                xff = value
        return cls(time, client, req.method, req.target, req.version, req.host_header, ua,
                   referer, xff, status, sent, duration, req, port, secure)
