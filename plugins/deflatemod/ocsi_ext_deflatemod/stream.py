"""Compressing a body as a stream, with bounded memory.

The source body is read with :meth:`ocsi.Body.chunks` (a file is read in bounded pieces, so no
``sendfile`` then), fed to the encoder ``buffer_size`` bytes at a time, and the encoded bytes go
out each time at least ``buffer_size`` of them are ready, then once more at the end. Memory per
response is the encoder's state, one source chunk and about one buffer of output, whatever the
body size. The source is closed when the stream ends, fails or is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ocsi import Body

from .codecs import Encoder


async def compressed_chunks(body: Body, encoder: Encoder, buffer_size: int) -> AsyncIterator[bytes]:
    out = bytearray()
    try:
        async for chunk in body.chunks():
            view = memoryview(chunk)
            for start in range(0, len(view), buffer_size):
                out += encoder.compress(view[start : start + buffer_size])
                if len(out) >= buffer_size:
                    data = bytes(out)
                    out.clear()
                    yield data
        out += encoder.finish()
        if out:
            yield bytes(out)
    finally:
        await body.aclose()


async def empty_chunks() -> AsyncIterator[bytes]:
    """No bytes (the body of a HEAD response, which the connection layer does not send)."""
    return
    yield b""  # pragma: no cover - makes this an async generator
