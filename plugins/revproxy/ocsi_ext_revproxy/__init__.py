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


@ocsi.documents(ocsi.ElementDoc(
    "revproxy", "forwards a matching request to a backend (HTTP/1.1, pooled connections, WebSocket) "
    "and relays its answer; one of suburl, fullurl, regexp",
    attributes=[
        ocsi.AttributeDoc("suburl", "pattern on the path below the site, without its leading /, with ?query, "
                          "as sent"),
        ocsi.AttributeDoc("fullurl", "pattern on http[s]://host[:port]/path[?query]"),
        ocsi.AttributeDoc("regexp", "Ocsigen 5.0.1's name for fullurl; with server, the pre-1.2 form"),
        ocsi.AttributeDoc("dest", r"http(s)://host[:port]/path, \1…\9 from the pattern; several URLs "
                          "separated by spaces are balanced"),
        ocsi.AttributeDoc("keephost", "keephost (or true): send the client's Host header", "off"),
        ocsi.AttributeDoc("nopipeline", "nopipeline (or true): a new backend connection per request", "off"),
        ocsi.AttributeDoc("server", "pre-1.2 form: the backend's host"),
        ocsi.AttributeDoc("port", "pre-1.2 form: the backend's port"),
        ocsi.AttributeDoc("uri", "pre-1.2 form: the path, $1…$9 from regexp"),
        ocsi.AttributeDoc("protocol", "pre-1.2 form: http or https", "`http`"),
        ocsi.AttributeDoc("balance", "several destinations: roundrobin or leastconn", "`roundrobin`"),
        ocsi.AttributeDoc("failtimeout", "a destination that failed is skipped this long", "`10s`"),
        ocsi.AttributeDoc("connecttimeout", "connecting, TLS included; then the next destination or 504",
                          "`10s`"),
        ocsi.AttributeDoc("responsetimeout", "from the request to the response head; then 504", "`60s`"),
        ocsi.AttributeDoc("idletimeout", "between two pieces of the response body", "`60s`"),
        ocsi.AttributeDoc("cafile", "verify HTTPS backends against these CAs (PEM)", "the system's"),
        ocsi.AttributeDoc("insecure", "insecure (or true): do not verify HTTPS backends", "off"),
        ocsi.AttributeDoc("forwarded", "forwarded (or true): also send the RFC 7239 Forwarded header", "off"),
        ocsi.AttributeDoc("rewritelocation", "rewritelocation (or true): Location and Refresh pointing "
                          "at the destination are rewritten to the client's scheme and Host "
                          "(nginx's proxy_redirect default)", "off"),
        ocsi.AttributeDoc("requestbuffer", "a chunked request body is sent with a Content-Length, "
                          "buffered up to this size (spooled to a file past 256 KiB), 413 beyond; "
                          "0: never", "off (1 MiB for an HTTP/1.0 backend)"),
        ocsi.AttributeDoc("websocket-max-message", "largest WebSocket message relayed either way "
                          "(frames are read, not changed); a larger one closes both sides with "
                          "1009; infinity: no bound", "`16MiB`"),
    ]))
def _parse(el: ocsi.Element, ctx: ocsi.ParseContext) -> ocsi.Step:
    return RevProxy(parse_revproxy(el, ctx), ctx.options(DISTRIBUTION), el.where)


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"revproxy": _parse}


@ocsi.hookimpl
@ocsi.documents(ocsi.ElementDoc(
    "pool", "idle backend connections kept for reuse", attributes=[
        ocsi.AttributeDoc("size", "most idle connections per backend; 0: none kept", "`32`"),
        ocsi.AttributeDoc("idle", "how long an idle connection is kept", "`4s`")]))
def ocsi_extension_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> ProxyOptions:
    return parse_options(options, ctx)


__all__ = ["DISTRIBUTION", "Balancer", "Destination", "DestinationError", "Origin", "Pool",
           "ProxyOptions", "RevProxy", "Rule", "Template", "UpstreamConnection", "make_rule",
           "parse_destination", "parse_options", "parse_revproxy", "revproxy"]
