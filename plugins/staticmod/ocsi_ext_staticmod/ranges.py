"""``Range: bytes=…`` (RFC 9110 §14): parsing, and ``multipart/byteranges`` bodies.

:func:`parse_range` returns ``None`` when the header must be ignored (another unit, a syntax
error, more than ``max_ranges`` ranges: the whole file is sent with 200),
:data:`UNSATISFIABLE` (416) when no range overlaps the file, or the list of ``(first, last)``
inclusive byte positions to send. Overlapping or adjacent ranges are merged (and the list is
sorted), so a request for many overlapping ranges cannot amplify the response.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

from ocsi import StreamBody

UNSATISFIABLE = "unsatisfiable"
CHUNK = 256 * 1024
_MAX_DIGITS = 18  # larger numbers are "beyond any file": no giant int parsing


def _num(text: str) -> int | None:
    if not text or not text.isdigit() or not text.isascii():
        return None
    if len(text) > _MAX_DIGITS:
        return int(10**_MAX_DIGITS)
    return int(text)


def parse_range(value: str, size: int, max_ranges: int = 16) -> list[tuple[int, int]] | str | None:
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    wanted: list[tuple[int, int]] = []
    count = 0
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue  # RFC 9110 tolerates empty list elements
        count += 1
        if count > max_ranges:
            return None
        first_s, dash, last_s = part.partition("-")
        if not dash:
            return None
        first_s, last_s = first_s.strip(), last_s.strip()
        if first_s == "":
            suffix = _num(last_s)
            if suffix is None:
                return None
            if suffix == 0 or size == 0:
                continue  # unsatisfiable member
            wanted.append((max(0, size - suffix), size - 1))
            continue
        first = _num(first_s)
        if first is None:
            return None
        if last_s == "":
            last = size - 1
        else:
            given = _num(last_s)
            if given is None or given < first:
                return None
            last = min(given, size - 1)
        if first >= size:
            continue  # unsatisfiable member
        wanted.append((first, last))
    if count == 0:
        return None
    if not wanted:
        return UNSATISFIABLE
    if len(wanted) == 1:
        return wanted
    wanted.sort()
    merged = [wanted[0]]
    for first, last in wanted[1:]:
        mf, ml = merged[-1]
        if first <= ml + 1:
            merged[-1] = (mf, max(ml, last))
        else:
            merged.append((first, last))
    return merged


def content_range(first: int, last: int, size: int) -> str:
    return f"bytes {first}-{last}/{size}"


class Multipart:
    """The parts of a ``multipart/byteranges`` body over an open file (pread, bounded chunks)."""

    def __init__(self, fd: int, ranges: list[tuple[int, int]], size: int, content_type: str,
                 boundary: str | None = None) -> None:
        self.fd = fd
        self.ranges = ranges
        self.boundary = boundary or secrets.token_hex(12)
        ctype = f"Content-Type: {content_type}\r\n".encode("latin-1", "replace")
        self.heads = [
            b"\r\n--" + self.boundary.encode() + b"\r\n" + ctype
            + f"Content-Range: {content_range(a, b, size)}\r\n\r\n".encode()
            for a, b in ranges
        ]
        self.tail = b"\r\n--" + self.boundary.encode() + b"--\r\n"
        self.length = (sum(len(h) for h in self.heads) + len(self.tail)
                       + sum(b - a + 1 for a, b in ranges))

    @property
    def content_type(self) -> str:
        return f"multipart/byteranges; boundary={self.boundary}"

    async def chunks(self) -> AsyncIterator[bytes]:
        for head, (first, last) in zip(self.heads, self.ranges):
            yield head
            pos, end = first, last + 1
            while pos < end:
                data = os.pread(self.fd, min(CHUNK, end - pos), pos)
                if not data:
                    raise OSError(f"file truncated while sending at offset {pos}")
                pos += len(data)
                yield data
        yield self.tail

    def body(self) -> StreamBody:
        fd = self.fd

        async def close() -> None:
            os.close(fd)

        return StreamBody(self.chunks(), length=self.length, close=close)
