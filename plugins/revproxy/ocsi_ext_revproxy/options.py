"""The extension's options (``<extension findlib-package="ocsi-ext-revproxy">``) and the
per-configuration state they carry: one connection pool shared by every ``<revproxy>`` of a
configuration, so two rules to the same backend reuse each other's connections.

``<pool size="32" idle="4s"/>``: at most ``size`` idle connections kept per backend, each for
at most ``idle`` (shorter than the idle timeout of common backends, so ocsi drops a connection
before the backend does and never sends a request into one being closed).
"""

from __future__ import annotations

from ocsi import Element, LoadContext, parse_int, parse_seconds

from .client import Pool
from .destination import Origin

DEFAULT_POOL_SIZE = 32
DEFAULT_POOL_IDLE = 4.0


class ProxyOptions:
    def __init__(self, pool_size: int = DEFAULT_POOL_SIZE, pool_idle: float = DEFAULT_POOL_IDLE) -> None:
        self.pool_size = pool_size
        self.pool_idle = pool_idle
        #: Made with the options (nothing in it touches the event loop before a request).
        self.pool = Pool(pool_size, pool_idle)
        #: Backends seen answering in HTTP/1.0: they cannot read a chunked request body.
        self.http10: set[Origin] = set()

    def close(self) -> None:
        """The configuration is retired: its idle connections go (idempotent)."""
        self.pool.close()


def parse_options(options: list[Element], ctx: LoadContext) -> ProxyOptions:
    size, idle = DEFAULT_POOL_SIZE, DEFAULT_POOL_IDLE
    for el in options:
        if el.tag != "pool":
            raise el.error(f"unknown option <{el.tag}> for ocsi-ext-revproxy",
                           hint='known: <pool size="32" idle="4s"/>')
        el.check(attributes=["size", "idle"])
        size = el.attr_value("size", parse_int, size)
        idle = el.attr_value("idle", parse_seconds, idle)
        if size < 0:
            raise el.error("size= must be 0 or more (0: no connection is kept)")
        if idle <= 0:
            raise el.error("idle= must be more than 0 seconds")
    return ProxyOptions(size, idle)
