"""A proxy's fast path for its backends' response heads: one regular expression, no callbacks.

A proxied request used to pay for its response head three times over: llhttp's callback per
field into Python, h11's rules on the framing fields applied field by field, an ``h11.Response``
built and validated again, then its fields decoded to text. Here a canonical head of a final
response is read with h11's own grammar (its field name, the field value it allows, the same status
line as :mod:`.fasthead`), compiled once for a whole block of fields: one match to
check the block, one ``findall`` to take the names and values, both in C. The rules h11 applies
after its grammar are kept: a ``Content-Length`` of digits given once, a ``Transfer-Encoding``
that is exactly ``chunked`` (h11 lower-cases it) and given once. Anything else (1xx, obsolete
line folding, bare LF, a repeated framing field) is declined and left to h11;
``tests/unit/test_response_head.py`` holds the two side by side on mutated heads.

Private: not part of the extension API.
"""

from __future__ import annotations

import re

from h11._abnf import field_name

from .fasthead import _STATUS_LINE

__all__ = ["ResponseHead", "parse_response_head"]

# h11's field line is ``field-name ":" OWS field-value OWS`` with a value of field-vchars
# (``[^\x00\s]``) and inner runs of SP/HTAB: over a whole line, exactly any run of characters
# but NUL, CR, LF, VT and FF after the colon, of which the value is what the OWS around leaves.
# h11 compiles its grammar as bytes; on latin-1 text ``re.ASCII`` gives the classes the same
# meaning (``\s`` is then only ASCII white space, as for bytes).
_VALUE = "[^\x00\n\r\x0b\x0c]*"
_block = re.compile(f"(?:{field_name}:{_VALUE}\r\n)*\r\n", re.ASCII).fullmatch
_fields = re.compile(f"({field_name}):({_VALUE})\r\n", re.ASCII).findall
_DIGITS = re.compile(r"[0-9]+", re.ASCII).fullmatch


class ResponseHead:
    """A final response head read by :func:`parse_response_head`.

    ``fields``: ``(lower-case name, value)`` text pairs (latin-1), as
    :func:`~.reader.header_fields` gives them; ``by_name``: each name's value, the last one
    when a name is given more than once, which ``repeated`` says; ``length``: the
    ``Content-Length`` (``None`` without one); ``chunked``: ``Transfer-Encoding: chunked``."""

    __slots__ = ("status_code", "http_version", "reason", "fields", "by_name", "repeated",
                 "length", "chunked")

    def __init__(self, status_code: int, http_version: bytes, reason: bytes,
                 fields: list[tuple[str, str]], by_name: dict[str, str], length: int | None,
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
    nl = head.find(b"\r\n")
    line = _STATUS_LINE(head, 0, nl)
    if line is None:
        return None
    text = head[nl + 2:].decode("latin-1")
    if _block(text) is None:
        return None
    fields = [(n.lower(), v.strip(" \t")) for n, v in _fields(text)]
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
    version, status, reason = line.groups()
    return ResponseHead(int(status), b"1." + version, reason or b"", fields, by_name,
                        None if length is None else int(length), chunked)
