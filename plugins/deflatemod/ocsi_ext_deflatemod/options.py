"""Options given inside ``<extension findlib-package="ocsi-ext-deflatemod">``.

``<compress level="0..9"/>`` (default 6), ``<buffer size="N"/>`` (default 8192 bytes),
``<minsize size="N"/>`` (default 256 bytes: smaller bodies of known length are not compressed)
``<encodings value="gzip deflate"/>`` (the codings to offer, best first; default every
available one: zstd br gzip deflate) and ``<cache size="32MiB" maxfile="1MiB"/>`` (compressed
static files kept in memory: at most ``size`` bytes in all, files of at most ``maxfile``
bytes; ``size="0"`` turns it off). As in Ocsigen, an out-of-range level or a non-positive
buffer size falls back to the default (with a warning); a level that is not an integer is an
error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ocsi import Element, LoadContext, ValueFormatError, parse_int, parse_size

from .cache import DEFAULT_BUDGET, DEFAULT_MAX_FILE, CompressedCache
from .codecs import AVAILABLE, EXTRAS, KNOWN

log = logging.getLogger("ocsi.ext.deflatemod")

EXTENSION = "ocsi-ext-deflatemod"
DEFAULT_LEVEL = 6
DEFAULT_BUFFER = 8192
DEFAULT_MIN_SIZE = 256


@dataclass(slots=True, frozen=True)
class DeflateOptions:
    level: int = DEFAULT_LEVEL
    buffer_size: int = DEFAULT_BUFFER
    min_size: int = DEFAULT_MIN_SIZE
    encodings: tuple[str, ...] = AVAILABLE
    cache_size: int = DEFAULT_BUDGET
    cache_max_file: int = DEFAULT_MAX_FILE
    #: This configuration's compressed files (made from the two limits above).
    cache: CompressedCache = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache", CompressedCache(self.cache_size, self.cache_max_file))


def check_encodings(names: list[str]) -> tuple[str, ...]:
    """Validate a preference list of codings; raises ``ValueError`` naming what is wrong."""
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if name == "x-gzip":
            name = "gzip"
        if name not in KNOWN:
            raise ValueError(f"unknown coding {raw!r} (known: {', '.join(KNOWN)})")
        if name not in AVAILABLE:
            raise ValueError(f"coding {name!r} needs a library that is not installed "
                             f"(pip install {EXTRAS[name]})")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no coding given")
    return tuple(out)


_KNOWN_OPTIONS = ('<compress level="6"/>, <buffer size="8192"/>, <minsize size="256"/>, '
                  '<encodings value="gzip deflate"/>, <cache size="32MiB" maxfile="1MiB"/>')


def parse_options(options: list[Element], ctx: LoadContext | None = None) -> DeflateOptions:
    level, buffer_size, min_size, encodings = DEFAULT_LEVEL, DEFAULT_BUFFER, DEFAULT_MIN_SIZE, AVAILABLE
    cache_size, cache_max_file = DEFAULT_BUDGET, DEFAULT_MAX_FILE
    for el in options:
        if el.tag == "compress":
            el.check(attributes=["level"], children=())
            raw = el.require("level", hint='<compress level="6"/>')
            try:
                level = parse_int(raw)
            except ValueFormatError:
                raise el.error("Compress level should be an integer between 0 and 9",
                               hint=f"got {raw!r}") from None
            if not 0 <= level <= 9:
                log.warning("%s: compress level %d is not between 0 and 9; using %d", el.where,
                            level, DEFAULT_LEVEL)
                level = DEFAULT_LEVEL
        elif el.tag == "buffer":
            el.check(attributes=["size"], children=())
            el.require("size", hint='<buffer size="8192"/>')
            size = el.attr_value("size", parse_size, None)
            if size is None or size <= 0:
                log.warning("%s: buffer size must be positive; using %d", el.where, DEFAULT_BUFFER)
                size = DEFAULT_BUFFER
            buffer_size = size
        elif el.tag == "minsize":
            el.check(attributes=["size"], children=())
            el.require("size", hint='<minsize size="256"/>')
            size = el.attr_value("size", parse_size, None)
            if size is None:
                raise el.error("minsize must be a number of bytes", hint='<minsize size="256"/>')
            min_size = size
        elif el.tag == "encodings":
            el.check(attributes=["value"], children=())
            raw = el.require("value", hint='<encodings value="br gzip deflate"/>')
            try:
                encodings = check_encodings(raw.replace(",", " ").split())
            except ValueError as exc:
                raise el.error(f"in <encodings>: {exc}") from None
        elif el.tag == "cache":
            el.check(attributes=["size", "maxfile"], children=())
            hint = '<cache size="32MiB" maxfile="1MiB"/> (size="0": no cache)'
            if el.get("size") is not None:
                size = el.attr_value("size", parse_size, None)
                if size is None:
                    raise el.error("the cache's size must be a number of bytes", hint=hint)
                cache_size = size
            if el.get("maxfile") is not None:
                most = el.attr_value("maxfile", parse_size, None)
                if most is None:
                    raise el.error("the cache's maxfile must be a number of bytes", hint=hint)
                cache_max_file = most
        else:
            raise el.error(f"Unexpected content inside deflatemod config: <{el.tag}>",
                           hint=f"known options: {_KNOWN_OPTIONS}")
    return DeflateOptions(level, buffer_size, min_size, encodings, cache_size, cache_max_file)
