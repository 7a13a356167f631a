"""Connection limits and timeouts (``<timeout>``, ``<maxrequestbodysize>``…), fixed per listener set.

Private: not part of the extension API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .fasthead import default_parser


@dataclass(slots=True, frozen=True)
class Limits:
    #: Longest request line (method, target, version): 414 past it.
    max_request_line: int = 8 * 1024
    #: Total size of the request head (request line + header fields): 431 past it.
    max_header_bytes: int = 32 * 1024
    #: Number of header fields: 431 past it.
    max_headers: int = 100
    #: Request body size (``<maxrequestbodysize>``, ``None`` = unlimited): 413 past it.
    max_body: int | None = 8_000_000
    #: Seconds to receive a complete request head once its first byte arrived (408, then close).
    header_timeout: float = 30.0
    #: Seconds without any byte while a body is being received (``<timeout>``).
    read_timeout: float = 30.0
    #: Seconds an idle keep-alive connection is kept (``<keepalivetimeout>``).
    keepalive_timeout: float = 30.0
    #: Simultaneous connections (``<maxconnected>``); over it, new ones get 503 and are closed.
    max_connections: int = 350
    #: ``Server`` header value on locally generated responses.
    server_name: str = "Ocsigen"
    #: ``<httpparser>httptools</httpparser>``: canonical request heads are read by httptools
    #: (:mod:`.fasthead`), everything else by h11.
    fast_parser: bool = field(default_factory=lambda: default_parser() == "httptools")
