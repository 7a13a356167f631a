"""From h11's parsed request head to a :class:`Request`, refusing what h11 lets through.

h11 already rejects malformed request lines and header lines, conflicting ``Content-Length``
values, transfer codings other than ``chunked``, a missing ``Host`` on HTTP/1.1 and repeated
``Host`` fields. What it accepts and ocsi refuses here, before any application code runs:

* versions other than 1.0 and 1.1 (505; h11 accepts any ``HTTP/x.y``);
* ``Content-Length`` together with ``Transfer-Encoding``, and ``Transfer-Encoding`` in an
  HTTP/1.0 request (400: both are request-smuggling shapes, RFC 9112 §6.1);
* an invalid ``Host`` value or absolute-form authority (400);
* a control character other than HTAB, or DEL, in a field value (400, RFC 9110 §5.5; h11
  refuses only NUL, CR, LF, VT and FF there: :mod:`.fieldcheck`);
* a request line longer than ``max_request_line`` (414), more than ``max_headers`` fields (431);
* a target that is neither origin-form, absolute-form nor ``*`` for ``OPTIONS``, or whose path
  climbs above the root (400).

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import TYPE_CHECKING, Any

from .fasthead import FastHead
from .fieldcheck import value_problem
from .headers import Headers
from .hostport import split_host_port
from .limits import Limits
from .request import Request, RequestBody
from .urlpath import BadTarget, decode_path, split_target

if TYPE_CHECKING:
    import h11

#: The body of every request without one (never fed, so it can be shared).
EMPTY_BODY = RequestBody(0, None)

_HOST = re.compile(
    r"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+)\]"
    r"|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::[0-9]*)?"
)
_REQUEST_LINE = re.compile(rb"[!-~]+ [!-~]+ HTTP/([0-9]+)(?:\.([0-9]+))?\r?")

_HOST_K, _CL_K, _TE_K, _CONN_K, _EXPECT_K = range(1, 6)
_KINDS = {
    b"host": _HOST_K,
    b"content-length": _CL_K,
    b"transfer-encoding": _TE_K,
    b"connection": _CONN_K,
    b"expect": _EXPECT_K,
}


class HeadError(Exception):
    """The request head is refused with ``status`` before the application sees it."""

    #: The request line, when it could be read: for the access line.
    method: str | None = None
    target: str | None = None
    version: str | None = None

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _items(h11_headers: Any) -> list[tuple[bytes, bytes, bytes]]:
    # h11's Headers keeps (raw name, lower-cased name, value) triples; iterating it through the
    # Sequence protocol costs a Python call per field, so read the list when it is there. A
    # FastHead's fields are such a list already.
    if type(h11_headers) is list:
        return h11_headers
    full: list[tuple[bytes, bytes, bytes]] | None = getattr(h11_headers, "_full_items", None)
    if full is None:
        return [(n, n, v) for n, v in h11_headers]
    return full


def host_name(authority: str) -> str | None:
    """Lower-cased host of ``host[:port]`` (IPv6 literals keep their brackets)."""
    return split_host_port(authority)[0].lower() or None


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}

#: ``Host`` value → ``(value, host name)``: a client sends the same one on every request.
_HOSTS: dict[str, tuple[str, str | None]] = {}
_MAX_HOSTS = 1024
#: Whether an authority (``host[:port]``) is well formed.
authority_ok = _HOST.fullmatch


def host_text(text: str) -> tuple[str, str | None]:
    """The ``Host`` value and its lower-cased host name; :class:`HeadError` when invalid.
    Valid values are remembered (bounded), so the check runs once per value."""
    known = _HOSTS.get(text)
    if known is not None:
        return known
    if not _HOST.fullmatch(text):
        raise HeadError(400, "invalid Host header")
    known = (text, host_name(text))
    if len(_HOSTS) >= _MAX_HOSTS:
        _HOSTS.clear()
    _HOSTS[text] = known
    return known


def parse_head(
    ev: h11.Request | FastHead, limits: Limits, port: int, secure: bool, client: str
) -> tuple[Request, int | None, bool, bool]:
    """Build the request from an ``h11.Request`` event (or a :class:`~.fasthead.FastHead`).

    Returns ``(request, body_length, expect_continue, keep_alive)`` where ``body_length`` is the
    declared ``Content-Length`` (``None`` for chunked). ``request.body`` is the shared empty body;
    the connection replaces it when there is a body. Raises :class:`HeadError`.
    """
    version = ev.http_version
    if version == b"1.1":
        http10 = False
    elif version == b"1.0":
        http10 = True
    else:
        raise HeadError(505, f"HTTP version {version.decode('ascii', 'replace')} not supported")
    method = ev.method
    target = ev.target
    if len(method) + len(target) + 10 > limits.max_request_line:
        raise HeadError(414, "request line too long")
    items = _items(ev.headers)
    if len(items) > limits.max_headers:
        raise HeadError(431, "too many header fields")

    host_raw = cl = conn = None
    te = expect = False
    kinds = _KINDS
    for _, name, value in items:
        k = kinds.get(name)
        if k is None:
            continue
        if k == _HOST_K:
            host_raw = value
        elif k == _CL_K:
            cl = value
        elif k == _TE_K:
            te = True
        elif k == _CONN_K:
            conn = value if conn is None else conn + b"," + value
        else:
            expect = value.lower() == b"100-continue"
    if te:
        if cl is not None:
            raise HeadError(400, "both Content-Length and Transfer-Encoding")
        if http10:
            raise HeadError(400, "Transfer-Encoding in an HTTP/1.0 request")
    length = int(cl) if cl is not None else (None if te else 0)

    if conn is None:
        keep = not http10
    else:
        tokens = {t.strip() for t in conn.lower().split(b",")}
        keep = b"close" not in tokens and (not http10 or b"keep-alive" in tokens)

    target_s = target.decode("latin-1")
    try:
        raw_path, query, _scheme, authority = split_target(target_s)
        if raw_path == "*" and method != b"OPTIONS":
            raise BadTarget("'*' is only for OPTIONS")
        raw_segments, segments = decode_path(raw_path)
    except BadTarget as exc:
        raise HeadError(400, str(exc)) from None

    host_header = None
    host = None
    if host_raw is not None:
        host_header, host = host_text(host_raw.decode("latin-1"))
    if authority is not None:
        authority = authority.rpartition("@")[2]
        if not authority or not authority_ok(authority):
            raise HeadError(400, "invalid authority in the request-target")
        host = host_name(authority)

    fields = [(n.decode("latin-1"), v.decode("latin-1")) for _, n, v in items]
    if type(ev) is not FastHead:  # llhttp refuses these values itself (test_fieldcheck.py)
        problem = value_problem(fields)  # h11 lets control characters through in values
        if problem is not None:
            raise HeadError(400, problem)
    request = Request(
        _METHODS.get(method) or method.decode("ascii"),
        target_s,
        raw_path,
        query,
        "1.0" if http10 else "1.1",
        Headers.from_lower(fields),
        host,
        port,
        secure,
        client,
        EMPTY_BODY,
        raw_segments,
        segments,
        host_header,
    )
    return request, length, expect and not http10 and length != 0, keep


def head_size(ev: h11.Request | FastHead) -> int:
    """Bytes of a parsed request head (line endings counted as CRLF, folding ignored)."""
    size = len(ev.method) + len(ev.target) + 12 + 2
    for raw, _, value in _items(ev.headers):
        size += len(raw) + len(value) + 4
    return size


def error_status(exc: Exception, first: bytes, limits: Limits) -> int:
    """Status for an h11 ``RemoteProtocolError`` raised while reading a head.

    ``first`` holds the first bytes of the head (at least its request line when it fits).
    A request line over the limit gives 414 (h11 reports any over-long head as 431), a line that
    looks like ``HTTP/x.y`` with another version 505, anything else h11's hint (usually 400).
    """
    nl = first.find(b"\n")
    line = first if nl < 0 else first[:nl]
    if len(line.rstrip(b"\r")) > limits.max_request_line:
        return 414
    m = _REQUEST_LINE.fullmatch(line) if nl >= 0 else None
    if m is not None and (m.group(1), m.group(2)) not in ((b"1", b"1"), (b"1", b"0")):
        return 505
    status = getattr(exc, "error_status_hint", 400)
    return status if isinstance(status, int) and 400 <= status <= 599 else 400


def peer_address(transport: asyncio.BaseTransport) -> str:
    """The client's IP as a string (IPv6 without brackets, IPv4-mapped as IPv4) or ``unix:``."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        ip = str(peer[0])
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        return ip
    sock = transport.get_extra_info("socket")
    family = getattr(sock, "family", None)
    if family == getattr(socket, "AF_UNIX", object()) or isinstance(peer, (str, bytes)):
        return "unix:"
    return "-"
