"""Run a configuration's requests in memory (``ocsi.testing.build_pipeline``) or over real
sockets (``ocsi_server``), with the same calls, so each table runs both ways."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

PREAMBLE = ('<extension findlib-package="ocsi-ext-accesscontrol"/>'
            '<extension module="ac_content"/>')
MEMORY_PORT = 8080


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def read_body(resp: Any) -> bytes:
    try:
        return b"".join([c async for c in resp.body.chunks()])
    finally:
        await resp.body.aclose()


class MemoryClient:
    mode = "memory"

    def __init__(self, xml: str) -> None:
        from ocsi.testing import build_pipeline

        self.port = MEMORY_PORT
        self.pipeline = build_pipeline(xml.replace("{port}", str(MEMORY_PORT)))

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            client: str = "127.0.0.1", secure: bool = False, version: str = "1.1",
            host: str = "localhost") -> Reply:
        from ocsi.testing import make_request

        req = make_request(method, path, headers=headers or {}, client=client, secure=secure,
                           version=version, port=MEMORY_PORT, host=host)

        async def go() -> Reply:
            resp = await self.pipeline.respond(req)
            body = await read_body(resp)
            return Reply(resp.status, {n: v for n, v in resp.headers.items()}, body)

        return asyncio.run(go())


class SocketClient:
    mode = "socket"

    def __init__(self, start: Any, xml: str) -> None:
        doc = ("<ocsigen><server><port>127.0.0.1:{port}</port><logdir>{tmp}/log</logdir>"
               "<commandpipe>{tmp}/ocsi.cmd</commandpipe>" + xml + "</server></ocsigen>")
        self.server = start(doc, full=True)
        self.port = self.server.port

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            host: str | None = None, **ignored: Any) -> Reply:
        h = dict(headers or {})
        if host is not None:
            h["Host"] = host
        r = self.server.request(method, path, headers=h)
        return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.body)


def socket_available() -> bool:
    try:
        import ocsi.server  # noqa: F401
        import ocsi.testing  # noqa: F401
    except ImportError:
        return False
    return True
