"""The characters a request head may hold, whichever protocol brought it (RFC 9110).

Steps match, rewrite and forward what a request carries, and a proxy writes it again as an
HTTP/1.1 head: a method ``GET /admin HTTP/1.1\\x0b`` written as a request line is another
request to a lenient backend. So every request is held to the same rules before any step sees
it, and the proxy holds what it writes to them too:

- the method is a token (RFC 9110 §9.1, tchar of §5.6.2);
- the target is visible ASCII, 0x21-0x7e (RFC 9112 §3.2), and ``*`` only for ``OPTIONS``;
  over HTTP/2 and HTTP/3 a path (RFC 9113 §8.3.1: ``:path`` is never an absolute URL);
- field names are tokens (RFC 9110 §5.1), lower-case over HTTP/2 and HTTP/3 (RFC 9113 §8.2.1);
- field values hold no control character but HTAB, and no DEL (RFC 9110 §5.5); obs-text
  (0x80-0xff) passes, as in h11 and in Apache's strict mode.

Who applies them: HTTP/1.1 heads are parsed by h11, whose grammar already holds the method,
target and names to these rules, but which lets control characters other than NUL, CR, LF and
VT/FF through in values (:func:`value_problem` is applied after it; llhttp, the optional fast
path, refuses exactly those values itself). HTTP/2 fields are bytes
as HPACK decoded them, and the h2 library refuses only NUL, CR, LF, white space around values
and names with upper case or bytes outside 0x21-0x7e: :func:`request_head_problem` is applied
to every HTTP/2 request (and is what an HTTP/3 one goes through). The proxy's client side
applies :func:`request_head_problem` to the head it is about to write.

Texts are ``str`` decoded from latin-1, as in :class:`~.headers.Headers`: a character above
U+00FF cannot be written and is refused too.

Private: not part of the extension API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from operator import itemgetter

__all__ = ["request_head_problem", "target_ok", "target_ok_bytes", "value_problem"]

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_LOWER_TCHAR = r"!#$%&'*+\-.^_`|~0-9a-z"
_VCHAR = r"\x21-\x7e"

_token = re.compile(f"[{_TCHAR}]+").fullmatch
_lower_token = re.compile(f"[{_LOWER_TCHAR}]+").fullmatch
#: Every name of a head at once, joined by LF: one match, not one per name (the count of LFs
#: then tells that no name held one itself).
_tokens = re.compile(f"[{_TCHAR}]+(?:\n[{_TCHAR}]+)*").fullmatch
_lower_tokens = re.compile(f"[{_LOWER_TCHAR}]+(?:\n[{_LOWER_TCHAR}]+)*").fullmatch
_name = itemgetter(0)
#: Names found to be tokens already (lower-case ones for HTTP/2 and HTTP/3 apart): the usual
#: names cost a set look-up each, not a regular expression. Bounded.
_NAMES: set[str] = set()
_LOWER_NAMES: set[str] = set()
KNOWN_NAMES = 4096
_value = itemgetter(1)
#: A request-target: visible ASCII (h11's ``request_target``; the fast path uses the bytes form).
target_ok = re.compile(f"[{_VCHAR}]+").fullmatch
target_ok_bytes = re.compile(f"[{_VCHAR}]+".encode()).fullmatch
#: A character a field value may not hold: controls but HTAB, DEL, and above U+00FF.
_bad_value_char = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u0100-\U0010ffff]").search


def value_problem(fields: Sequence[tuple[str, str]]) -> str | None:
    """Why one of the values of ``fields`` (``(name, value)`` pairs) cannot be taken, or
    ``None``. The usual head (printable ASCII only) is checked in one pass over the values."""
    joined = " ".join(map(_value, fields))
    if joined.isascii() and joined.isprintable():
        return None
    for name, value in fields:
        found = _bad_value_char(value)
        if found is not None:
            return f"character {found.group()!r} in the value of field {name!r}"
    return None


def request_head_problem(method: str, target: str, fields: Iterable[tuple[str, str]],
                         pseudo: bool = False) -> str | None:
    """Why a request head cannot be taken (or written to a backend), or ``None`` when it can.

    ``fields``: ``(name, value)`` pairs. ``pseudo``: the head came as HTTP/2 or HTTP/3
    fields, where names are lower-case and ``:path`` is a path or ``*``, never an absolute
    URL (RFC 9113 §8.2.1, §8.3.1). The answer is a short sentence for a log line; the bad part
    is quoted with ``repr`` so that it never writes control characters into the log."""
    if not _token(method):
        return f"method {method!r} is not a token"
    if not target_ok(target):
        return f"target {target!r} is not visible ASCII"
    if target == "*":
        if method != "OPTIONS":
            return "'*' is only for OPTIONS"
    elif pseudo and target[0] != "/":
        return f"path {target!r} does not start with '/'"
    fields = list(fields)
    known = _LOWER_NAMES if pseudo else _NAMES
    if not known.issuperset(map(_name, fields)):
        joined = "\n".join(map(_name, fields))
        if (_lower_tokens if pseudo else _tokens)(joined) \
                and joined.count("\n") == len(fields) - 1:
            if len(known) < KNOWN_NAMES:
                known.update(joined.split("\n"))
            return value_problem(fields)
        name_ok = _lower_token if pseudo else _token
        for name, _ in fields:
            if not name_ok(name):
                return f"field name {name!r} is not a{' lower-case' if pseudo else ''} token"
    return value_problem(fields)
