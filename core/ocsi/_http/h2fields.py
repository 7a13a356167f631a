"""An HTTP/2 request's header block, checked and split in one pass (RFC 9113 §8.2, §8.3).

The h2 library can validate inbound header blocks itself, through a chain of eight
generators per field; for a small request that costs more than the rest of the stream's
handling in h2. :class:`~.h2conn.H2Protocol` turns that off and calls :func:`split_request`
instead, which refuses exactly what h2's validation refuses for a request (the differential
test in ``tests/unit/test_h2fields.py`` holds the two side by side on generated blocks):

- an empty field name, a name with an upper-case letter, white space around a name or a value;
- a connection-specific field (``connection``, ``keep-alive``, ``proxy-connection``,
  ``transfer-encoding``, ``upgrade``), ``te`` other than ``trailers``;
- a pseudo-header that is repeated, unknown, a response's (``:status``), ``:protocol``
  outside CONNECT, or after a regular field; a missing ``:method``; a missing ``:scheme`` or
  ``:path`` (but for a plain CONNECT, which may not have them); an empty ``:path``;
- neither ``:authority`` nor ``host``, ``host`` repeated, or both with different values.

A regular field accepted once is remembered with its text (a bounded table), since a client
repeats most of its fields on every request and each rule for such a field is about it alone.

What h2 does to accepted blocks (``normalize_inbound_headers``) is done too: ``cookie`` fields
are joined with ``"; "`` into one (RFC 9113 §8.2.3). Characters are left to the caller, which
holds names and values to the same rules as every protocol's (:mod:`.fieldcheck`): those refuse
every character h2 refuses (in names: controls, space, upper case, bytes above 0x7e, a colon;
in values: NUL, CR, LF) and more, with a 400 rather than a reset.

Private: not part of the extension API.
"""

from __future__ import annotations

import re
from typing import NoReturn

__all__ = ["MalformedRequest", "split_request"]

#: Pseudo-header fields a request may carry.
_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path", b":protocol"))
#: Fields HTTP/2 forbids (RFC 9113 §8.2.2).
_CONNECTION = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                         b"upgrade"))
#: White space that may not surround a name or a value (h2 4's rule). Other control characters
#: are refused by :mod:`.fieldcheck`, with a 400 rather than a stream reset.
_WS = b" \t"
_NOT_PLAIN = frozenset((b"te", b"cookie", b"host")) | _CONNECTION
#: Regular fields accepted already (``user-agent``, ``accept``...: a client repeats them on
#: every request), as their text: such a field passes every rule above by itself, so a second
#: sight of it is one dictionary look-up. Bounded: emptied when full; long values not kept.
_PLAIN: dict[tuple[bytes, bytes], tuple[str, str]] = {}
_PLAIN_MAX = 1024
_PLAIN_VALUE_MAX = 256


class MalformedRequest(Exception):
    """The header block is malformed (a stream error of type PROTOCOL_ERROR)."""


_bad_pseudo_value = re.compile(rb"\A[ \t]|[ \t]\Z|[\x00\r\n]").search


def _pseudo_problem(name: bytes, pseudo: dict[bytes, bytes]) -> NoReturn:
    """Raise for a pseudo-header field that is unknown, repeated or after a regular one."""
    if name not in _PSEUDO:
        raise MalformedRequest(f"pseudo-header {name!r} in a request")
    if name in pseudo:
        raise MalformedRequest(f"pseudo-header {name!r} repeated")
    raise MalformedRequest(f"pseudo-header {name!r} after a regular field")


def _value_problem(name: bytes, value: bytes) -> NoReturn:
    """Raise for a pseudo-header value with white space around it or NUL, CR, LF in it."""
    if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
        raise MalformedRequest(f"white space around the value of {name!r}")
    raise MalformedRequest(f"NUL, CR or LF in {name!r}")


def split_request(block: list[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes],
                                                             list[tuple[str, str]]]:
    """``(pseudo-header fields, regular fields as latin-1 text)`` of a request's header block
    as HPACK decoded it; raises :class:`MalformedRequest`."""
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[str, str]] = []
    cookies: list[bytes] = []
    host: bytes | None = None
    plain = _PLAIN
    for field in block:
        name, value = field
        if name[:1] == b":":
            if name not in _PSEUDO or name in pseudo or regular or cookies or host is not None:
                _pseudo_problem(name, pseudo)
            if _bad_pseudo_value(value):  # NUL, CR, LF: what no later rule would see in
                _value_problem(name, value)  # :scheme or :protocol; white space around
            pseudo[name] = value
            continue
        known = plain.get(field)
        if known is not None:  # accepted before: every rule for it is about it alone
            regular.append(known)
            continue
        if not name:
            raise MalformedRequest("empty field name")
        if value and (value[0] in _WS or value[-1] in _WS):
            raise MalformedRequest(f"white space around the value of {name!r}")
        if name.lower() != name:
            raise MalformedRequest(f"upper-case field name {name!r}")
        if name[0] in _WS or name[-1] in _WS:
            raise MalformedRequest(f"white space around the field name {name!r}")
        text = (name.decode("latin-1"), value.decode("latin-1"))
        if name in _NOT_PLAIN:
            if name in _CONNECTION:
                raise MalformedRequest(f"connection-specific field {name!r}")
            if name == b"te":
                if value.lower() != b"trailers":
                    raise MalformedRequest(f"te: {value!r}")
            elif name == b"cookie":
                cookies.append(value)
                continue
            else:
                if host is not None:
                    raise MalformedRequest("host repeated")
                host = value
        elif len(value) <= _PLAIN_VALUE_MAX:
            if len(plain) >= _PLAIN_MAX:
                plain.clear()
            plain[(name, value)] = text
        regular.append(text)
    # the usual request (the four fields of a plain one, a path, no host field) passes every
    # rule of _check_pseudo; anything else goes through them
    if len(pseudo) != 4 or host is not None or b":protocol" in pseudo \
            or pseudo[b":method"] == b"CONNECT" or not pseudo[b":path"]:
        _check_pseudo(pseudo, host)
    if cookies:
        regular.append(("cookie", b"; ".join(cookies).decode("latin-1")))
    return pseudo, regular


def _check_pseudo(pseudo: dict[bytes, bytes], host: bytes | None) -> None:
    """Raise when the pseudo-header fields (and ``host``) are not those of a request."""
    method = pseudo.get(b":method")
    if method is None:
        raise MalformedRequest("no :method pseudo-header")
    if method == b"CONNECT" and b":protocol" not in pseudo:
        if b":scheme" in pseudo or b":path" in pseudo:  # RFC 9113 §8.5
            raise MalformedRequest("CONNECT with :scheme or :path")
    else:  # extended CONNECT (RFC 8441) has them as every other request does
        if b":scheme" not in pseudo or b":path" not in pseudo:
            raise MalformedRequest("no :scheme or :path pseudo-header")
        if b":protocol" in pseudo and method != b"CONNECT":
            raise MalformedRequest(":protocol outside CONNECT")
    if pseudo.get(b":path", b"-") == b"":
        raise MalformedRequest("empty :path")
    authority = pseudo.get(b":authority")
    if authority is None and host is None:
        raise MalformedRequest("neither :authority nor host")
    if authority is not None and host is not None and authority != host:
        raise MalformedRequest(":authority and host differ")
