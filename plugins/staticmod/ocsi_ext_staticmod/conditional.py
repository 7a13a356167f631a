"""Validators and conditional requests (RFC 9110 §8.8, §13): 304, 412, ``If-Range``.

Evaluation order is RFC 9110 §13.2.2: ``If-Match`` (strong comparison; else
``If-Unmodified-Since``) can give 412; then ``If-None-Match`` (weak comparison; else
``If-Modified-Since``, GET/HEAD only) gives 304 for GET/HEAD (412 for other methods). Dates are
compared in whole seconds. A malformed date is ignored, as the RFC requires.
"""

from __future__ import annotations

import re

from ocsi import Headers
from ocsi.httputil import parse_http_date

_TAG = re.compile(r'(W/)?"([^"]*)"')


def weak(etag: str) -> str:
    return etag if etag.startswith("W/") else "W/" + etag


def _tags(value: str) -> list[tuple[bool, str]]:
    """``[(is_weak, opaque)]`` of an entity-tag list (``*`` is handled by callers)."""
    return [(bool(m.group(1)), m.group(2)) for m in _TAG.finditer(value)]


def _split(etag: str) -> tuple[bool, str]:
    if etag.startswith("W/"):
        return True, etag[3:-1]
    return False, etag[1:-1]


def match_strong(value: str, etag: str | None) -> bool:
    """``If-Match`` / ``If-Range`` comparison: both tags strong and equal (``*`` matches)."""
    if value.strip() == "*":
        return True
    if etag is None:
        return False
    is_weak, opaque = _split(etag)
    if is_weak:
        return False
    return any(not w and o == opaque for w, o in _tags(value))


def match_weak(value: str, etag: str | None) -> bool:
    """``If-None-Match`` comparison: opaque parts equal, weakness ignored (``*`` matches)."""
    if value.strip() == "*":
        return True
    if etag is None:
        return False
    opaque = _split(etag)[1]
    return any(o == opaque for _, o in _tags(value))


def evaluate(method: str, headers: Headers, etag: str | None, mtime: int,
             last_modified: str) -> int | None:
    """304, 412, or ``None`` to go on with the request (range processing, then 200)."""
    im = headers.get("if-match")
    if im is not None:
        if not match_strong(im, etag):
            return 412
    else:
        ius = headers.get("if-unmodified-since")
        if ius is not None:
            date = parse_http_date(ius)
            if date is not None and mtime > date:
                return 412
    inm = headers.get("if-none-match")
    get_like = method == "GET" or method == "HEAD"
    if inm is not None:
        if match_weak(inm, etag):
            return 304 if get_like else 412
    elif get_like:
        ims = headers.get("if-modified-since")
        if ims is not None:
            if ims == last_modified:  # what browsers send back: no parsing needed
                return 304
            date = parse_http_date(ims)
            if date is not None and mtime <= date:
                return 304
    return None


def if_range_allows(value: str, etag: str | None, mtime: int, last_modified: str) -> bool:
    """Whether ``If-Range: value`` lets the ``Range`` apply (else the whole file, 200)."""
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return etag is not None and match_strong(value, etag)
    if value == last_modified:
        return True
    date = parse_http_date(value)
    return date is not None and date == mtime
