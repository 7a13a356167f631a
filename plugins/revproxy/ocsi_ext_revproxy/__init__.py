"""ocsi-ext-revproxy: a reverse proxy (Ocsigen's revproxy) for ocsi.

Configuration: ``<revproxy suburl|fullurl|regexp="R" dest="URL…" [keephost] [nopipeline] …/>``
inside a ``<host>`` or ``<site>``; ``<pool>`` inside its ``<extension>`` element. See README.md.

From Python::

    from ocsi_ext_revproxy import revproxy
    steps = [revproxy(suburl="api/(.*)", dest="http://127.0.0.1:9000/\\\\1")]
"""

from __future__ import annotations

from typing import Any

import ocsi

from .balance import Balancer
from .client import Pool, UpstreamConnection
from .destination import (
    Destination,
    DestinationError,
    Origin,
    Template,
    parse_destination,
)
from .options import ProxyOptions, parse_options
from .rules import Rule, make_rule, parse_revproxy
from .step import RevProxy

DISTRIBUTION = "ocsi-ext-revproxy"


def revproxy(*, options: ProxyOptions | None = None, **rule: Any) -> RevProxy:
    """A ``<revproxy>`` step from Python: the keyword arguments of :func:`make_rule`."""
    return RevProxy(make_rule(**rule), options)


def _parse(el: ocsi.Element, ctx: ocsi.ParseContext) -> ocsi.Step:
    return RevProxy(parse_revproxy(el, ctx), ctx.options(DISTRIBUTION), el.where)


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"revproxy": _parse}


@ocsi.hookimpl
def ocsi_extension_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> ProxyOptions:
    return parse_options(options, ctx)


__all__ = ["DISTRIBUTION", "Balancer", "Destination", "DestinationError", "Origin", "Pool",
           "ProxyOptions", "RevProxy", "Rule", "Template", "UpstreamConnection", "make_rule",
           "parse_destination", "parse_options", "parse_revproxy", "revproxy"]
