"""ocsi-ext-accesscontrol: Ocsigen's accesscontrol for ocsi.

Configuration elements (inside ``<host>`` and ``<site>``): ``<if>`` with conditions ``<ip>``,
``<port>``, ``<ssl>``, ``<header>``, ``<method>``, ``<protocol>``, ``<path>``, ``<and>``,
``<or>``, ``<not>``; actions ``<notfound/>``, ``<forbidden/>``, ``<nextsite/>``,
``<nexthost/>``, ``<stop/>``, ``<iffound>``, ``<ifnotfound>``; and ``<allow-forward-for/>`` /
``<allow-forward-proto/>``. Extension option: ``<trustedproxy value="…"/>``. See README.md.

From Python, without XML::

    from ocsi_ext_accesscontrol import if_, ip, not_, forbidden
    steps = [if_(not_(ip("10.0.0.0/8")), then=[forbidden()]), static(dir="/srv/www")]
"""

from __future__ import annotations

from typing import Any

import ocsi

from . import actions, forwarding
from .actions import (
    Forbidden,
    If,
    IfFound,
    IfNotFound,
    NextHost,
    NextSite,
    NotFoundAction,
    Stop,
    forbidden,
    if_,
    iffound,
    ifnotfound,
    nexthost,
    nextsite,
    notfound,
    stop,
)
from .conditions import (
    Condition,
    and_,
    header,
    ip,
    method,
    not_,
    or_,
    parse_condition,
    path,
    port,
    protocol,
    ssl,
)
from .forwarding import (
    AccessControlOptions,
    AllowForwardFor,
    AllowForwardProto,
    allow_forward_for,
    allow_forward_proto,
)


@ocsi.hookimpl
def ocsi_elements() -> dict[str, Any]:
    return {**actions.PARSERS, **forwarding.PARSERS}


@ocsi.hookimpl
@ocsi.documents(ocsi.ElementDoc(
    "trustedproxy", "a trusted proxy for <allow-forward-for/> and <allow-forward-proto/> (repeatable)",
    attributes=[ocsi.AttributeDoc("value", "addresses or networks separated by spaces", required=True)]))
def ocsi_extension_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> AccessControlOptions:
    return forwarding.parse_options(options, ctx)


__all__ = [
    "AccessControlOptions", "AllowForwardFor", "AllowForwardProto", "Condition", "Forbidden", "If",
    "IfFound", "IfNotFound", "NextHost", "NextSite", "NotFoundAction", "Stop", "allow_forward_for",
    "allow_forward_proto", "and_", "forbidden", "header", "if_", "iffound", "ifnotfound", "ip",
    "method", "nexthost", "nextsite", "not_", "notfound", "or_", "parse_condition", "path", "port",
    "protocol", "ssl", "stop",
]
