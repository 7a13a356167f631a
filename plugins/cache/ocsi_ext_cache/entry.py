"""One stored response: its metadata (what RFC 9111 needs to judge it) and where its body is.

On disk an entry is one file: a magic line, the metadata's length (4 bytes), the metadata as
JSON, then the body, so a hit is one ``open`` and the body goes out with ``sendfile`` from an
offset. A *vary pointer* (a small file with another magic) stands at the primary key's place
when the response had ``Vary``: it names the request headers that select the variant.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import ocsi

ENTRY_MAGIC = b"OCSI-CACHE-ENTRY 1\n"
VARY_MAGIC = b"OCSI-CACHE-VARY 1\n"
_LEN = struct.Struct(">I")
#: Metadata larger than this is refused (headers are bounded by the server's own limits).
META_MAX = 1024 * 1024


@dataclass(slots=True)
class Meta:
    """What the cache keeps besides the body. Times are wall-clock seconds (workers share
    them through files)."""

    key: str
    status: int
    headers: list[tuple[str, str]]
    request_time: float
    response_time: float
    #: ``corrected_initial_age`` (RFC 9111 §4.2.3) when the response was received
    initial_age: float
    #: freshness lifetime in seconds (0: stale at once, revalidated before use)
    lifetime: float
    #: how long past its lifetime it may be served while being revalidated / when the origin fails
    swr: float = 0.0
    sie: float = 0.0
    #: must-revalidate, proxy-revalidate, s-maxage or no-cache: never served stale
    strict: bool = False
    #: the request headers named by Vary, as the request that filled the entry sent them
    vary: dict[str, str] = field(default_factory=dict)
    #: the body's size (not in the file's metadata: the file's size after it says it)
    length: int = 0

    def age(self, now: float) -> float:
        return self.initial_age + max(0.0, now - self.response_time)

    def headers_obj(self) -> ocsi.Headers:
        return ocsi.Headers(list(self.headers))

    def encode(self) -> bytes:
        data = json.dumps({
            "key": self.key, "status": self.status, "headers": self.headers,
            "request_time": self.request_time, "response_time": self.response_time,
            "initial_age": self.initial_age, "lifetime": self.lifetime, "swr": self.swr,
            "sie": self.sie, "strict": self.strict, "vary": self.vary,
        }, separators=(",", ":")).encode()
        return ENTRY_MAGIC + _LEN.pack(len(data)) + data

    @classmethod
    def decode(cls, data: bytes) -> Meta:
        d: dict[str, Any] = json.loads(data)
        return cls(key=str(d["key"]), status=int(d["status"]),
                   headers=[(str(n), str(v)) for n, v in d["headers"]],
                   request_time=float(d["request_time"]),
                   response_time=float(d["response_time"]),
                   initial_age=float(d["initial_age"]), lifetime=float(d["lifetime"]),
                   swr=float(d["swr"]), sie=float(d["sie"]), strict=bool(d["strict"]),
                   vary={str(k): str(v) for k, v in d["vary"].items()})


def header_size(data: bytes) -> int | None:
    """Given the first bytes of an entry file, the metadata's length, or ``None``."""
    n = len(ENTRY_MAGIC)
    if len(data) < n + 4 or data[:n] != ENTRY_MAGIC:
        return None
    (size,) = _LEN.unpack_from(data, n)
    return size if size <= META_MAX else None


PREFIX = len(ENTRY_MAGIC) + 4


def encode_vary(names: list[str]) -> bytes:
    return VARY_MAGIC + json.dumps(names).encode()


def decode_vary(data: bytes) -> list[str] | None:
    if not data.startswith(VARY_MAGIC):
        return None
    names = json.loads(data[len(VARY_MAGIC):])
    return [str(n) for n in names] if isinstance(names, list) else None
