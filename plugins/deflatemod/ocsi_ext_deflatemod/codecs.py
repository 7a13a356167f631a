"""Streaming encoders for each content coding.

``gzip`` and ``deflate`` (the zlib format, as RFC 9110 defines it) always exist; ``br`` needs the
``brotli`` module (``pip install ocsi-ext-deflatemod[brotli]``) and ``zstd`` the ``zstandard``
module (``[zstd]``). Each encoder takes input in pieces and keeps a bounded window whatever the
body size: zlib 32 KiB (plus its ~256 KiB state), brotli a 512 KiB window, zstd the window of its
level (at most 2 MiB up to level 9).

The ``<compress level>`` (0–9) is used as is for gzip/deflate, as the brotli quality and as the
zstd level (0 becomes 1).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

try:  # optional extra [brotli]
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

try:  # optional extra [zstd]
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None  # type: ignore[assignment]  # optional: None when absent


class Encoder(Protocol):
    def compress(self, data: bytes | memoryview) -> bytes: ...
    def finish(self) -> bytes: ...


class ZlibEncoder:
    """gzip (``wbits=31``: 10-byte header, mtime 0) or zlib-wrapped deflate (``wbits=15``)."""

    __slots__ = ("_c",)

    def __init__(self, level: int, wbits: int) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, wbits, 8)

    def compress(self, data: bytes | memoryview) -> bytes:
        return self._c.compress(data)

    def finish(self) -> bytes:
        return self._c.flush(zlib.Z_FINISH)


class BrotliEncoder:
    __slots__ = ("_c",)

    def __init__(self, level: int) -> None:
        assert _brotli is not None
        self._c = _brotli.Compressor(quality=min(max(level, 0), 11), lgwin=19)

    def compress(self, data: bytes | memoryview) -> bytes:
        out: bytes = self._c.process(data)  # brotli is untyped
        return out

    def finish(self) -> bytes:
        out: bytes = self._c.finish()
        return out


class ZstdEncoder:
    __slots__ = ("_c",)

    def __init__(self, level: int) -> None:
        assert _zstd is not None
        self._c = _zstd.ZstdCompressor(level=max(level, 1)).compressobj()

    def compress(self, data: bytes | memoryview) -> bytes:
        return self._c.compress(data)

    def finish(self) -> bytes:
        return self._c.flush(_zstd.COMPRESSOBJ_FLUSH_FINISH)


#: Every coding this module knows, in the default preference order (best first).
KNOWN: tuple[str, ...] = ("zstd", "br", "gzip", "deflate")

_FACTORIES: dict[str, Callable[[int], Encoder]] = {
    "gzip": lambda level: ZlibEncoder(level, 31),
    "deflate": lambda level: ZlibEncoder(level, 15),
}
if _brotli is not None:
    _FACTORIES["br"] = BrotliEncoder
if _zstd is not None:
    _FACTORIES["zstd"] = ZstdEncoder

#: The codings usable here, in default preference order.
AVAILABLE: tuple[str, ...] = tuple(c for c in KNOWN if c in _FACTORIES)

#: What to install for a coding that is known but unavailable.
EXTRAS = {"br": "ocsi-ext-deflatemod[brotli]", "zstd": "ocsi-ext-deflatemod[zstd]"}


def encoder(coding: str, level: int) -> Encoder:
    """A fresh encoder for ``coding`` (one per response)."""
    return _FACTORIES[coding](level)
