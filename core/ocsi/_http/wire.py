"""Serialising response heads: status lines, header names, framing, ``Server``/``Date``.

The connection layer writes response heads itself instead of going through h11's send side:
h11's server state machine and its header re-validation cost about as much as parsing the
request (≈40 µs per response on the reference machine). What h11 would check is checked here:
header names must be tokens, values must not contain CR/LF, the status must be final, and the
framing headers (``Content-Length``, ``Transfer-Encoding``, ``Connection``) are always computed
from the body rather than taken from the application.

Private: not part of the extension API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

from .dates import date_header_line, http_date_now
from .response import reason_phrase

#: Framing of a response body on the wire.
NONE, LENGTH, CHUNKED, EOF = 0, 1, 2, 3

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]{1,19}")

#: Wire spelling of lower-cased header names; grows (bounded) with names seen at run time.
_NAMES: dict[str, str] = {
    n.lower(): n
    for n in (
        "Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Allow", "Cache-Control",
        "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Location",
        "Content-Range", "Content-Security-Policy", "Content-Type", "Date", "ETag", "Expires",
        "Last-Modified", "Link", "Location", "Pragma", "Retry-After", "Server", "Set-Cookie",
        "Strict-Transport-Security", "Vary", "Via", "WWW-Authenticate", "X-Content-Type-Options",
        "X-Frame-Options", "X-XSS-Protection",
    )
}
_MAX_NAMES = 4096

#: Header names the connection layer owns (framing); an application's values are not copied.
_OWNED = frozenset(("content-length", "transfer-encoding", "connection"))

_STATUS_LINES: dict[int, str] = {}


def wire_name(name: str) -> str:
    """``content-type`` → ``Content-Type``; raises :class:`ValueError` for a non-token name."""
    w = _NAMES.get(name)
    if w is None:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        w = "-".join(p[:1].upper() + p[1:] for p in name.split("-"))
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[name] = w
    return w


#: ``(name, value)`` → its checked header line. The same fields go out again and again (a
#: file's type, validators and cache headers, an application's constant headers), and a dict
#: lookup is several times cheaper than checking and formatting the line. Bounded: values up
#: to 256 characters, emptied when full.
_LINES: dict[tuple[str, str], str] = {}
_MAX_LINES = 8192
_MAX_CACHED_VALUE = 256


def _header_line(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"CR/LF in the value of header {name!r}")
    line = f"{wire_name(name)}: {value}\r\n"
    if len(value) <= _MAX_CACHED_VALUE:
        if len(_LINES) >= _MAX_LINES:
            _LINES.clear()
        _LINES[(name, value)] = line
    return line


def status_line(status: int, reason: str | None = None) -> str:
    """``HTTP/1.1 200 OK\\r\\n`` (cached when the standard reason phrase is used)."""
    if reason is None:
        line = _STATUS_LINES.get(status)
        if line is None:
            if type(status) is not int or not 200 <= status <= 999:
                raise ValueError(f"invalid final status {status!r}")
            line = f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"
            _STATUS_LINES[status] = line
        return line
    if type(status) is not int or not 200 <= status <= 999:
        raise ValueError(f"invalid final status {status!r}")
    if "\r" in reason or "\n" in reason:
        raise ValueError("CR/LF in reason phrase")
    return f"HTTP/1.1 {status} {reason}\r\n"


def server_line(name: str) -> str:
    if "\r" in name or "\n" in name:
        raise ValueError("CR/LF in server name")
    return f"Server: {name}\r\n"


def _has_close(value: str) -> bool:
    return any(t.strip().lower() == "close" for t in value.split(","))


def build_trailers(fields: Iterable[tuple[str, str]]) -> bytes:
    """The last chunk with trailer fields (RFC 9112 §7.1.2); fields that cannot be sent
    (framing, line breaks, bad names) are left out."""
    lines = ["0\r\n"]
    for name, value in fields:
        if name in _OWNED or name in ("trailer", "te", "host") or "\r" in value or "\n" in value:
            continue
        try:
            lines.append(f"{wire_name(name)}: {value}\r\n")
        except ValueError:
            continue
    lines.append("\r\n")
    return "".join(lines).encode("latin-1", "replace")


def build_switch_head(headers: Iterable[tuple[str, str]], server: str) -> bytes:
    """``101 Switching Protocols`` with the application's headers (``Upgrade``, ``Connection``
    and the new protocol's own) as they are."""
    lines = ["HTTP/1.1 101 Switching Protocols\r\n"]
    has_server = False
    for name, value in headers:
        if "\n" in value or "\r" in value:
            raise ValueError(f"CR/LF in the value of header {name!r}")
        has_server = has_server or name == "server"
        lines.append(f"{wire_name(name)}: {value}\r\n")
    if not has_server:
        lines.append(server)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


#: The header fields of a response as they go on the wire, by the fields themselves and the
#: ``Server`` line: ``(lines, app_length, close, has_date)``. Most answers repeat a handful of
#: field lists (a file's type and validators, an application's constant headers, an error
#: page's), and one lookup of the whole list costs a fraction of checking and formatting it
#: field by field. The key holds the very fields, so a hit is exact; bounded in count and in
#: size (a block over ``_MAX_BLOCK`` characters is made every time), emptied when full.
_BLOCKS: dict[tuple[object, ...], tuple[str, str | None, bool, bool, bool]] = {}
_MAX_BLOCKS = 512
_MAX_BLOCK = 4096


def _field_block(key: tuple[object, ...]) -> tuple[str, str | None, bool, bool, bool]:
    """``key``: the ``Server`` line then the fields. The fields' lines (the framing ones left
    out), the application's ``Content-Length`` if any, whether it asked to close, whether it
    has its own ``Server`` and ``Date``."""
    lines = []
    app_length = None
    has_server = has_date = close = False
    fields = cast("tuple[tuple[str, str], ...]", key[1:])  # the pairs after the Server line
    for name, value in fields:
        if name in _OWNED:
            if name == "content-length":
                app_length = value.strip()
            elif name == "connection" and _has_close(value):
                close = True
            continue
        if name == "server":
            has_server = True
        elif name == "date":
            has_date = True
        line = _LINES.get((name, value))
        if line is None:
            line = _header_line(name, value)
        lines.append(line)
    block = ("".join(lines), app_length, close, has_server, has_date)
    if len(block[0]) <= _MAX_BLOCK:
        if len(_BLOCKS) >= _MAX_BLOCKS:
            _BLOCKS.clear()
        try:
            _BLOCKS[key] = block
        except TypeError:  # fields given as lists: not kept, made every time
            pass
    return block


def build_head(
    status: int,
    reason: str | None,
    headers: Iterable[tuple[str, str]],
    body_length: int | None,
    is_head: bool,
    http10: bool,
    keep: bool,
    server: str,
) -> tuple[bytes, int, int | None, bool]:
    """Serialise a response head.

    Returns ``(head, framing, length, keep)``: ``framing`` is how the body goes out (``NONE``
    when nothing is sent: ``HEAD``, 204, 304), ``length`` the byte count for ``LENGTH`` and
    ``keep`` whether the connection stays open afterwards (an application's ``Connection:
    close`` and close-delimited HTTP/1.0 bodies turn it off). ``server`` is a ready
    ``Server: …\\r\\n`` line. Raises :class:`ValueError` for headers that cannot be sent.
    """
    line = _STATUS_LINES.get(status) if reason is None else None
    if line is None:
        line = status_line(status, reason)
    key = (server, *headers)
    try:
        block = _BLOCKS.get(key)
    except TypeError:  # fields given as lists
        block = None
    if block is None:
        block = _field_block(key)
    fields, app_length, close, has_server, has_date = block
    if close:
        keep = False
    length: int | None
    if status == 204 or status == 304:
        framing, length = NONE, 0
        if status == 304 and app_length is not None and _DIGITS.fullmatch(app_length):
            fields += f"Content-Length: {app_length}\r\n"
    else:
        length = body_length
        if length is None and app_length is not None:
            if not _DIGITS.fullmatch(app_length):
                raise ValueError(f"invalid Content-Length {app_length!r}")
            length = int(app_length)
        if length is not None:
            fields += f"Content-Length: {length}\r\n"
            framing = LENGTH
        elif http10:
            framing = EOF
            if not is_head:
                keep = False
        else:
            fields += "Transfer-Encoding: chunked\r\n"
            framing = CHUNKED
        if is_head:
            framing = NONE
    if not has_server:
        fields += server
    if not has_date:
        fields += date_header_line()
    if not keep:
        end = "Connection: close\r\n\r\n"
    elif http10:
        end = "Connection: keep-alive\r\n\r\n"
    else:
        end = "\r\n"
    return (line + fields + end).encode("latin-1"), framing, length, keep


#: Response fields HTTP/2 and HTTP/3 leave out: connection-specific (RFC 9113 §8.2.2, RFC 9114
#: §4.2), and the length, which is the body's.
_NOT_MULTIPLEXED = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                              "upgrade", "content-length"))
#: Statuses whose answers never have a body.
NO_BODY = (204, 304)


def field_block(status: int, headers: Iterable[tuple[str, str]], body_length: int | None,
                head_only: bool, server: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    """A response's field block for HTTP/2 and HTTP/3 (``:status`` first, ``server`` and ``date``
    unless the answer has its own, ``content-length`` from the body), and whether the answer
    goes without a body. A value with CR, LF or NUL raises :class:`ValueError`: HPACK and QPACK
    would carry it."""
    block: list[tuple[bytes, bytes]] = [(b":status", str(status).encode())]
    has_date = has_server = False
    for name, value in headers:
        if name in _NOT_MULTIPLEXED:
            continue
        if name == "date":
            has_date = True
        elif name == "server":
            has_server = True
        if "\n" in value or "\r" in value or "\0" in value:
            raise ValueError(f"CR, LF or NUL in the value of header {name!r}")
        block.append((name.encode("latin-1"), value.encode("latin-1")))
    if not has_server:
        block.append((b"server", server))
    if not has_date:
        block.append((b"date", http_date_now().encode()))
    if isinstance(body_length, int) and status not in NO_BODY:
        block.append((b"content-length", str(body_length).encode()))
    return block, head_only or status in NO_BODY
