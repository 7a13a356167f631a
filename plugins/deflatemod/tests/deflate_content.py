"""A content extension for the deflatemod tests (``<extension module="deflate_content"/>``).

``<payload path="REGEXP" size="N" seed="0" type="text/html" kind="bytes|file|stream"
chunk="65536" known-length="true" status="200" header-NAME="VALUE"…/>`` serves
:func:`payload` ``(N, seed)`` when the regexp (default ``.*``) fully matches the sub-path:
from memory, from an open file (:class:`ocsi.FileBody`) or as a stream of ``chunk``-byte pieces
(with or without a known length). ``type=""`` sends no Content-Type; every ``header-X``
attribute adds header ``X``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
import os
import random
import re
import tempfile

import ocsi
from ocsi import (DO_NOTHING, Answer, Body, BytesBody, Element, ElementParser, FileBody, Found, Next, ParseContext, Request,
                  Response, Serve, State, Step, StreamBody)

_WORDS = [w.encode() for w in (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega <div class=\"x\"> </div> <p> </p>").split()]


def extension(options: str = "") -> str:
    """The ``<extension>`` line loading deflatemod, with its global options."""
    return f'<extension findlib-package="ocsi-ext-deflatemod">{options}</extension>'


@functools.lru_cache(maxsize=128)
def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic text, compressible but not trivially (a few random bytes now and then)."""
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        if rnd.random() < 0.08:
            out += rnd.randbytes(rnd.randint(1, 40))
        out += rnd.choice(_WORDS)
        out += b"\n" if rnd.random() < 0.1 else b" "
    return bytes(out[:size])


def file_body(data: bytes) -> FileBody:
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        fd = os.dup(f.fileno())
    return FileBody(fd, 0, len(data))


def stream_body(data: bytes, chunk: int, known: bool) -> StreamBody:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), chunk):
            yield data[i : i + chunk]
    return StreamBody(gen(), len(data) if known else None)


class Payload(Step):
    def __init__(self, regexp: str, size: int, seed: int, ctype: str, kind: str, chunk: int,
                 known: bool, status: int, headers: list[tuple[str, str]]) -> None:
        self.regexp = re.compile(regexp)
        self.data = payload(size, seed)
        self.ctype, self.kind, self.chunk, self.known = ctype, kind, chunk, known
        self.status, self.headers = status, headers

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        if self.regexp.fullmatch(request.sub_path_str) is None:
            return Next(state.status)
        headers = [("content-type", self.ctype)] if self.ctype else []
        headers += self.headers
        if self.kind == "file":
            body: Body = file_body(self.data)
        elif self.kind == "stream":
            body = stream_body(self.data, self.chunk, self.known)
        else:
            body = BytesBody(self.data)
        return Serve(Response(self.status, headers, body))


def _payload(el: Element, ctx: ParseContext) -> Step:
    fixed = ["path", "size", "seed", "type", "kind", "chunk", "known-length", "status"]
    el.check(attributes=fixed + [a for a in el.attrs if a.startswith("header-")])
    return Payload(
        el.get("path", ".*"), int(el.get("size", "20000")), int(el.get("seed", "0")),
        el.get("type", "text/html"), el.get("kind", "bytes"), int(el.get("chunk", "65536")),
        el.get("known-length", "true") == "true", int(el.get("status", "200")),
        [(a[len("header-"):], v) for a, v in el.attrs.items() if a.startswith("header-")],
    )


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ElementParser]:
    return {"payload": _payload}
