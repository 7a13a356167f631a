"""In-memory helpers for staticmod's tests: a runtime built from XML, requests without sockets."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from ocsi.extensions.loader import new_plugin_manager
from ocsi.http.headers import Headers
from ocsi.http.request import Request
from ocsi.http.urlpath import BadTarget, decode_path, split_target
from ocsi.runtime import Runtime, build_configuration


@dataclass
class Got:
    status: int
    headers: Headers
    body: bytes

    def h(self, name: str) -> str | None:
        return self.headers.get(name)


def runtime(inner: str, extensions: tuple[str, ...] = ("staticmod", "extendconfiguration"),
            port: int = 8080) -> Runtime:
    """A runtime for ``<server>`` children ``inner`` (extensions loaded first)."""
    exts = "".join(f'<extension findlib-package="ocsi-ext-{e}"/>' for e in extensions)
    data = f"<ocsigen><server><port>{port}</port>{exts}{inner}</server></ocsigen>"
    pm = new_plugin_manager()
    return Runtime(build_configuration(pm, "test.conf", data.encode()), pm)


def make_request(target: str, method: str = "GET", headers: dict[str, str] | None = None,
                 host: str | None = "example.org", port: int = 8080) -> Request:
    raw_path, query, _scheme, _authority = split_target(target)
    raw_segments, segments = decode_path(raw_path)
    items = [("host", host)] if host is not None else []
    items += list((headers or {}).items())
    return Request(method, target, raw_path, query, "1.1", Headers(items),
                   host.split(":")[0] if host else None, port, False, "127.0.0.1", None,
                   raw_segments, segments, host_header=host)


async def _fetch(rt: Runtime, req: Request) -> Got:
    resp = await rt.respond(req)
    data = b""
    try:
        if req.method != "HEAD":
            data = b"".join([c async for c in resp.body.chunks()])
    finally:
        await resp.body.aclose()
    return Got(resp.status, resp.headers, data)


def fetch(rt: Runtime, target: str, method: str = "GET", headers: dict[str, str] | None = None,
          **kw) -> Got:
    """Run one request through ``rt``; a target the core refuses gives status 400."""
    try:
        req = make_request(target, method, headers, **kw)
    except BadTarget:
        return Got(400, Headers(), b"")
    return asyncio.run(_fetch(rt, req))


def response_length(got: Got) -> int:
    return len(got.body)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
