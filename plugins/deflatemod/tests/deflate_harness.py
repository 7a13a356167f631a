"""Run a configuration in memory or over real sockets with the same calls (see conftest.py),
and decode what comes back."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any

PREAMBLE = '<extension module="deflate_content"/>'
MEMORY_PORT = 8080


def extension(options: str = "") -> str:
    return f'<extension findlib-package="ocsi-ext-deflatemod">{options}</extension>'


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: In memory: the body's declared length (None: chunked). Over sockets: from the framing.
    length: int | None = None
    chunks: int = 0

    @property
    def chunked(self) -> bool:
        return self.length is None and "content-length" not in self.headers

    def decoded(self) -> bytes:
        return decode(self.headers.get("content-encoding"), self.body)


def decode(coding: str | None, data: bytes) -> bytes:
    if coding is None:
        return data
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)  # the zlib format: RFC 9110's "deflate"
    if coding == "br":
        import brotli
        return brotli.decompress(data)
    if coding == "zstd":
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise AssertionError(f"unexpected coding {coding!r}")


class MemoryClient:
    mode = "memory"

    def __init__(self, xml: str) -> None:
        from ocsi.testing import build_pipeline

        self.pipeline = build_pipeline(xml)

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
        from ocsi.testing import make_request

        req = make_request(method, path, headers=headers or {}, port=MEMORY_PORT)

        async def go() -> Reply:
            resp = await self.pipeline.respond(req)
            n = 0
            parts = []
            try:
                async for c in resp.body.chunks():
                    n += 1
                    parts.append(c)
            finally:
                await resp.body.aclose()
            body = b"" if method == "HEAD" else b"".join(parts)
            return Reply(resp.status, dict(resp.headers.items()), body, resp.body.length, n)

        return asyncio.run(go())


class SocketClient:
    mode = "socket"

    def __init__(self, start: Any, xml: str) -> None:
        self.server = start(xml)

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
        # Without an Accept-Encoding of ours, http.client sends "Accept-Encoding: identity".
        r = self.server.request(method, path, headers=headers or {})
        hd = {k.lower(): v for k, v in r.headers.items()}
        cl = hd.get("content-length")
        return Reply(r.status, hd, r.body, int(cl) if cl is not None else None)
