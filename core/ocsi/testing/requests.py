"""Requests and pipelines built in memory, for unit tests of steps and conditions.

These skip the connection layer: :func:`make_request` builds a :class:`~ocsi.Request` as the
connection would (target split and decoded, Host read), :func:`build_pipeline` parses a
configuration into its pipeline without provisioning it. To test what a client sees, use
:class:`~ocsi.testing.memory.MemoryServer` (the ``ocsi_memory`` / ``ocsi_client`` fixtures)
instead: it runs the real request path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._http.request import Request
    from .._pipeline.engine import Pipeline

__all__ = ["build_pipeline", "make_request"]


def make_request(method: str = "GET", target: str = "/", *, host: str | None = "localhost",
                 headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
                 body: bytes = b"", port: int = 80, secure: bool = False,
                 client: str = "127.0.0.1", version: str = "1.1") -> Request:
    """A :class:`ocsi.Request` for ``target`` (raises ``BadTarget`` where a server answers 400)."""
    from .._http.headers import Headers
    from .._http.hostport import split_host_port
    from .._http.request import Request, RequestBody
    from .._http.urlpath import decode_path, split_target

    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    if host is not None and not any(n.lower() == "host" for n, _ in items):
        items.insert(0, ("host", host))
    raw_path, query, _, _ = split_target(target)
    raw, segs = decode_path(raw_path)
    rb = RequestBody(len(body), None)
    if body:
        rb.feed(body)
    rb.end()
    h = Headers(items)
    host_header = h.get("host")
    name = split_host_port(host_header)[0].lower() if host_header else None
    return Request(method, target, raw_path, query, version, h, name, port, secure, client, rb,
                   raw, segs, host_header=host_header)


def build_pipeline(xml: str, findlib: list[str] | None = None) -> Pipeline:
    """Parse ``<server>`` children into a pipeline (not provisioned; no sockets)."""
    from .._extensions.loader import new_plugin_manager
    from ..runtime import Runtime, build_configuration

    paths = "".join(f'<findlib path="{p}"/>' for p in findlib or [])
    data = f"<ocsigen><server><port>0</port>{paths}{xml}</server></ocsigen>".encode()
    pm = new_plugin_manager()
    return Runtime(build_configuration(pm, "<test>", data), pm).pipeline
