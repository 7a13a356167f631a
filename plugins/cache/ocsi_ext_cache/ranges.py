"""Answering a client from a stored whole body: ``Range`` (one range; several get the whole
body, which RFC 9110 §14.2 allows) with ``If-Range``, and the client's own conditions
(``If-None-Match``, ``If-Modified-Since``) against the stored validators."""

from __future__ import annotations

import ocsi
from ocsi.httputil import parse_http_date

#: Fields a 304 carries from the stored response (RFC 9110 §15.4.5).
NOT_MODIFIED_FIELDS = frozenset({"cache-control", "content-location", "date", "etag", "expires",
                                 "vary", "last-modified"})


def _tags(value: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in value.split(",") if t.strip()]


def not_modified(request: ocsi.Headers, stored: ocsi.Headers) -> bool:
    """Whether the client's conditions make the stored response a 304 (weak comparison)."""
    inm = request.get("if-none-match")
    if inm is not None:
        etag = stored.get("etag")
        if etag is None:
            return False
        tags = _tags(inm)
        return "*" in tags or etag.strip().removeprefix("W/") in tags
    ims = request.get("if-modified-since")
    lm = stored.get("last-modified")
    if ims is None or lm is None:
        return False
    since, modified = parse_http_date(ims), parse_http_date(lm)
    return since is not None and modified is not None and modified <= since


def single_range(request: ocsi.Headers, stored: ocsi.Headers,
                 length: int) -> tuple[int, int] | str | None:
    """``(start, end)`` inclusive for one satisfiable byte range, ``"unsatisfiable"``, or
    ``None`` to send the whole body (no range, several, or an ``If-Range`` that fails)."""
    value = request.get("range")
    if value is None:
        return None
    if_range = request.get("if-range")
    if if_range is not None:
        if_range = if_range.strip()
        etag = stored.get("etag")
        if if_range.startswith(('"', "W/")):
            if etag is None or if_range.startswith("W/") or etag.startswith("W/") \
                    or etag.strip() != if_range:
                return None  # strong comparison only (RFC 9110 §13.1.5)
        else:
            lm = stored.get("last-modified")
            if lm is None or parse_http_date(lm) != parse_http_date(if_range):
                return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "" or int(last) == 0:
            return "unsatisfiable"
        n = min(int(last), length)
        return (length - n, length - 1) if length else "unsatisfiable"
    start = int(first)
    if start >= length:
        return "unsatisfiable"
    end = length - 1 if last == "" else min(int(last), length - 1)
    if end < start:
        return None  # invalid: ignored
    return start, end
