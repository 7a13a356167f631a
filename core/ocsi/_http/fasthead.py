"""An optional fast path for request heads: ``httptools`` (llhttp, in C), h11 deciding the rest.

h11 parses a typical request head in about 18 µs here, close to half of everything ocsi does for
a small answer; llhttp through ``httptools`` does it in about 2 µs. ``<httpparser>httptools
</httpparser>`` (with ``pip install ocsi[fast]``) turns this path on; h11 stays the default and
the reference.

The fast path never widens what is accepted. It takes a head only when it is *canonical* —
every line ends with CRLF, no obsolete line folding, the head is complete in the buffer — and
llhttp accepts it, and then it applies h11's own rules on top: the request-target is visible
ASCII between single spaces, the version is 1.0 or 1.1, a ``Content-Length`` is digits and
given once, ``Transfer-Encoding`` is exactly
``chunked`` and given once, and HTTP/1.1 has exactly one ``Host`` (HTTP/1.0 at most one).
Anything else — whatever llhttp refuses, and every shape where the two parsers might read the
bytes differently — is left in the buffer for h11, which answers it exactly as it always did.
``tests/http/test_fast_head.py`` checks on mutated heads that whenever the fast path answers,
h11 accepts the same bytes and yields the same method, target, version and fields.

The result is shaped like ``h11.Request`` for :func:`~.incoming.parse_head`: ``method``,
``target``, ``http_version`` (bytes) and ``headers`` as ``(raw name, lower name, value)``.

Private: not part of the extension API.
"""

from __future__ import annotations

import os
import re
from typing import Any
try:
    import httptools
except ImportError:  # pragma: no cover - depends on the environment (the [fast] extra)
    httptools = None  # type: ignore[assignment]  # optional: AVAILABLE says whether it loaded

from .fieldcheck import target_ok_bytes

__all__ = ["AVAILABLE", "FastHead", "default_parser", "parse_canonical_head", "read_canonical"]

#: Whether the fast path can be used here (``httptools`` is installed).
AVAILABLE = httptools is not None


def default_parser() -> str:
    """``<httpparser>``'s default: ``$OCSI_HTTP_PARSER`` when it names one (the test suite runs
    its protocol suites once with each this way), else ``httptools`` when it is installed (the
    ``fast`` extra: a head costs a tenth of h11's), else ``h11``."""
    value = os.environ.get("OCSI_HTTP_PARSER", "").strip()
    if value in ("h11", "httptools"):
        return value
    return "httptools" if AVAILABLE else "h11"

_TARGET = target_ok_bytes  # h11's request-target (vchar+), as every protocol's
_DIGITS = re.compile(rb"[0-9]+").fullmatch  # h11's Content-Length
_OWS = b" \t"
_HOST, _CL, _TE = b"host", b"content-length", b"transfer-encoding"


class FastHead:
    """A request head read by the fast path, with the attributes ``parse_head`` reads."""

    __slots__ = ("method", "target", "http_version", "headers")

    def __init__(self, method: bytes, target: bytes, http_version: bytes,
                 headers: list[tuple[bytes, bytes, bytes]]) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers


class _Fields:
    """httptools' callbacks, collecting the target and the fields of one head."""

    __slots__ = ("target", "fields", "complete")

    def __init__(self) -> None:
        self.target = b""
        self.fields: list[tuple[bytes, bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, name.lower(), value.strip(_OWS)))

    def on_headers_complete(self) -> None:
        self.complete = True


def _framed_as_h11(fields: list[tuple[bytes, bytes, bytes]]
                   ) -> tuple[list[tuple[bytes, bytes, bytes]] | None, int]:
    """``(fields, Host count)``: the fields as h11 would give them, or ``None`` when their
    framing is not one h11 reads the same way (a ``Content-Length`` not made of digits or given
    twice, a ``Transfer-Encoding`` other than one ``chunked``)."""
    hosts = lengths = codings = 0
    chunked = False
    for _, name, value in fields:
        if name == _HOST:
            hosts += 1
        elif name == _CL:
            lengths += 1
            if not _DIGITS(value):
                return None, hosts
        elif name == _TE:
            codings += 1
            if value.lower() != b"chunked":
                return None, hosts
            chunked = True
    if lengths > 1 or codings > 1:
        return None, hosts
    if chunked:  # h11 lower-cases this value
        fields = [(r, n, v.lower() if n == _TE else v) for r, n, v in fields]
    return fields, hosts


def read_canonical(head: bytes, callbacks: Any) -> Any:
    """llhttp's request parser after it read ``head`` (one complete head) into ``callbacks``
    (``on_url``, ``on_header``, ``on_headers_complete``); ``None`` when the head is not
    canonical (leading garbage, a bare LF, obsolete folding) or llhttp refuses it."""
    if not (b"A" <= head[:1] <= b"Z"):
        return None  # leading empty lines, garbage: h11's answer
    if head.count(b"\n") != head.count(b"\r\n") or b"\n " in head or b"\n\t" in head:
        return None  # bare LF or obsolete line folding
    parser = httptools.HttpRequestParser(callbacks)
    try:
        parser.feed_data(head)
    except httptools.HttpParserUpgrade:
        pass  # Upgrade / CONNECT: the head itself is complete
    except httptools.HttpParserError:
        return None
    return parser


def parse_canonical_head(head: bytes) -> FastHead | None:
    """``head``: the bytes of one complete head, its final CRLF CRLF included. The parsed head,
    or ``None`` when it is not canonical or llhttp refuses it (then h11 must read it)."""
    got = _Fields()
    parser = read_canonical(head, got)
    if parser is None or not got.complete or not _TARGET(got.target):
        return None
    version = parser.get_http_version()
    if version != "1.1" and version != "1.0":
        return None  # HTTP/0.9 (no version: llhttp takes it, h11 does not), 2.0…: h11's answer
    method = parser.get_method()
    if not head.startswith(b"%s %s HTTP/%s\r\n" % (method, got.target, version.encode())):
        return None  # not exactly one space each side of the target (llhttp allows more)
    fields, hosts = _framed_as_h11(got.fields)
    if fields is None or hosts > 1 or (hosts == 0 and version == "1.1"):
        return None
    return FastHead(method, got.target, version.encode("ascii"), fields)
