"""A proxy's fast path for its backends' response heads: h11's grammar, a line at a time, once.

A proxied request used to pay for its response head three times over: llhttp's callback per
field into Python, h11's rules on the framing fields applied field by field, an ``h11.Response``
built and validated again, then its fields decoded to text. Here a canonical head of a final
response is split into lines, each read with h11's own grammar (``h11._abnf``'s field line and
status line) unless the same line was read before: a backend repeats most of its lines, and a
regular expression costs more per character than all the rest. A whole head seen before (the
same resource within the same second of ``Date``, the usual case for a busy one) is the head
read then, as it was. The rules h11 applies
after its grammar are kept: a ``Content-Length`` of digits given once, a ``Transfer-Encoding``
that is exactly ``chunked`` (h11 lower-cases it) and given once. Anything else (1xx, obsolete
line folding, bare LF, a repeated framing field) is declined and left to h11;
``tests/unit/test_response_head.py`` holds the two side by side on mutated heads.

Private: not part of the extension API.
"""

from __future__ import annotations

import re

from typing import Any

from h11._abnf import header_field, status_line

__all__ = ["ResponseHead", "parse_response_head"]

# h11's own grammar for a field line and a status line, compiled for latin-1 text: there
# ``re.ASCII`` gives every class the meaning it has over bytes (``\s`` is ASCII white space).
_field_line = re.compile(header_field, re.ASCII).fullmatch
_status_line = re.compile(status_line, re.ASCII).fullmatch
_DIGITS = re.compile(r"[0-9]+", re.ASCII).fullmatch

#: Field lines read before, and what they hold: a backend repeats most of its lines from one
#: answer to the next (``Server``, ``Content-Type``, ``Connection``, a ``Date`` for a second),
#: and a line found here costs a dictionary look-up instead of a regular expression (which
#: costs more than the rest of reading the head). Bounded: emptied when full, and only short
#: lines are kept.
_known: dict[str, tuple[str, str]] = {}
_statuses: dict[str, tuple[int, bytes, bytes]] = {}
KNOWN_LINES = 1024
KNOWN_LENGTH = 256
#: Whole heads read before (bytes as received → the head read then), bounded the same way.
_heads: dict[bytes, ResponseHead] = {}
KNOWN_HEADS = 64
KNOWN_HEAD_SIZE = 2048


def _remember(cache: dict[str, Any], line: str, value: Any) -> None:
    if len(line) <= KNOWN_LENGTH:
        if len(cache) >= KNOWN_LINES:
            cache.clear()
        cache[line] = value


def _read_status(line: str) -> tuple[int, bytes, bytes] | None:
    m = _status_line(line)
    if m is None:
        return None
    version = m["http_version"] or "1.1"
    status = int(m["status_code"])
    if status < 200 or version not in ("1.0", "1.1"):
        return None  # 1xx, HTTP/2.0 and the like: h11's answer
    got = (status, version.encode("latin-1"), (m["reason"] or "").encode("latin-1"))
    _remember(_statuses, line, got)
    return got


def _read_fields(lines: list[str], pairs: list[tuple[str, str] | None]
                 ) -> list[tuple[str, str]] | None:
    """``pairs`` with the lines not known yet read by h11's grammar; ``None`` when one is not
    a field line."""
    out = []
    for line, pair in zip(lines, pairs):
        if pair is None:
            m = _field_line(line)
            if m is None:
                return None
            pair = (m["field_name"].lower(), m["field_value"])
            _remember(_known, line, pair)
        out.append(pair)
    return out


class ResponseHead:
    """A final response head read by :func:`parse_response_head`.

    ``fields``: ``(lower-case name, value)`` text pairs (latin-1), as
    :func:`~.reader.header_fields` gives them; ``by_name``: each name's value, the last one
    when a name is given more than once, which ``repeated`` says; ``length``: the
    ``Content-Length`` (``None`` without one); ``chunked``: ``Transfer-Encoding: chunked``.
    The same bytes give the same object again (:func:`parse_response_head` keeps the heads it
    read): it is read, never changed, which its tuple of fields says for the fields."""

    __slots__ = ("status_code", "http_version", "reason", "fields", "by_name", "repeated",
                 "length", "chunked")

    def __init__(self, status_code: int, http_version: bytes, reason: bytes,
                 fields: tuple[tuple[str, str], ...], by_name: dict[str, str], length: int | None,
                 chunked: bool) -> None:
        self.status_code = status_code
        self.http_version = http_version
        self.reason = reason
        self.fields = fields
        self.by_name = by_name
        self.repeated = len(by_name) != len(fields)
        self.length = length
        self.chunked = chunked

    def framing(self, method: str) -> tuple[str, int]:
        """How its body is delimited when it answers ``method``: what
        :func:`~.reader.response_framing` says of the same fields, without reading them again."""
        if self.status_code in (204, 304) or method == "HEAD":
            return "length", 0
        if self.chunked:
            return "chunked", 0
        if self.length is not None:
            return "length", self.length
        return "close", 0


def parse_response_head(head: bytes) -> ResponseHead | None:
    """``head``: the bytes of one complete response head, its final CRLF CRLF included. The
    head, or ``None`` when it is not a canonical final response head (then h11 reads it)."""
    known = _heads.get(head)
    if known is not None:
        return known
    lines = head.decode("latin-1").split("\r\n")
    del lines[-2:]  # the two empty strings after the last CRLF CRLF
    status = _statuses.get(lines[0]) or _read_status(lines[0])
    if status is None:
        return None
    del lines[0]
    pairs = list(map(_known.get, lines))
    fields: list[tuple[str, str]]
    if None in pairs:
        read = _read_fields(lines, pairs)
        if read is None:
            return None
        fields = read
    else:
        fields = pairs  # type: ignore[assignment]  # no None in it
    by_name = dict(fields)
    length = by_name.get("content-length")
    coding = by_name.get("transfer-encoding")
    if len(by_name) != len(fields) and (length is not None or coding is not None):
        names = [n for n, _ in fields]
        if names.count("content-length") > 1 or names.count("transfer-encoding") > 1:
            return None
    if length is not None and not _DIGITS(length):
        return None
    chunked = False
    if coding is not None:
        if coding.lower() != "chunked":
            return None
        chunked = True
        if coding != "chunked":  # h11 lower-cases this value
            fields = [(n, "chunked" if n == "transfer-encoding" else v) for n, v in fields]
            by_name["transfer-encoding"] = "chunked"
    got = ResponseHead(status[0], status[1], status[2], tuple(fields), by_name,
                       None if length is None else int(length), chunked)
    if len(head) <= KNOWN_HEAD_SIZE:
        if len(_heads) >= KNOWN_HEADS:
            _heads.clear()
        _heads[head] = got
    return got
