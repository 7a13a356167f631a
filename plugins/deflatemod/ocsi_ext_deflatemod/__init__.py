"""ocsi-ext-deflatemod: streaming response compression (Ocsigen's deflatemod) for ocsi.

Configuration: ``<deflate compress="only|allbut">`` with ``<type>`` and ``<extension>`` rules,
placed after the content generators it filters; options ``<compress level>``, ``<buffer size>``,
``<minsize size>`` and ``<encodings value>`` inside its ``<extension>`` element. See README.md.

From Python::

    from ocsi_ext_deflatemod import deflate
    steps = [static(dir="/srv/www"), deflate("only", types=["text/*", "application/json"])]
"""

from __future__ import annotations

from typing import Any

import ocsi

from .cache import CompressedCache, clear_all
from .codecs import AVAILABLE
from .negotiation import negotiate, parse_accept_encoding
from .options import DeflateOptions, parse_options
from .rules import Selection
from .step import Deflate, add_vary, deflate, parse_deflate, weak_etag


@ocsi.hookimpl
def ocsi_elements() -> dict[str, Any]:
    return {"deflate": parse_deflate}


@ocsi.hookimpl
def ocsi_clear_caches() -> None:
    clear_all()


@ocsi.hookimpl
@ocsi.documents(
    ocsi.ElementDoc("compress", "the compression level", attributes=[
        ocsi.AttributeDoc("level", "0 (store) to 9 (smallest); gzip/deflate level, brotli quality, "
                          "zstd level", required=True)]),
    ocsi.ElementDoc("buffer", "the size of the pieces compressed output is sent in", attributes=[
        ocsi.AttributeDoc("size", "a size (16KiB)", required=True)]),
    ocsi.ElementDoc("minsize", "bodies known to be smaller are sent as they are", attributes=[
        ocsi.AttributeDoc("size", "a size", required=True)]),
    ocsi.ElementDoc("encodings", "the codings offered, best first", attributes=[
        ocsi.AttributeDoc("value", "among zstd br gzip deflate", required=True)]),
    ocsi.ElementDoc("cache", "the cache of compressed static files", attributes=[
        ocsi.AttributeDoc("size", "most bytes of compressed data kept; 0: no cache", "`32MiB`"),
        ocsi.AttributeDoc("maxfile", "largest file cached", "`1MiB`")]),
)
def ocsi_extension_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> DeflateOptions:
    return parse_options(options, ctx)


__all__ = ["AVAILABLE", "CompressedCache", "Deflate", "DeflateOptions", "Selection", "add_vary", "deflate",
           "negotiate", "parse_accept_encoding", "parse_options", "weak_etag"]
