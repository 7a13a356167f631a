"""``<allow-forward-for/>`` and ``<allow-forward-proto/>``: believing a reverse proxy.

Who is trusted
--------------
Only a peer that is a *trusted proxy* may rewrite the client address or the scheme. The trusted
proxies are, by precedence:

1. the element's ``proxies="10.0.0.0/8 ::1"`` attribute;
2. the extension options, ``<trustedproxy value="…"/>`` inside
   ``<extension findlib-package="ocsi-ext-accesscontrol">`` (repeatable);
3. nothing configured: the element itself is the statement of trust (as in Ocsigen) and the
   TCP peer, whoever it is, is believed, but for **one hop only**.

Which address becomes the client
--------------------------------
``X-Forwarded-For`` (all its lines, as one comma-separated list) is read from the right, since
each proxy appends the address it received the request from and only the right end was
written by someone we trust. With trusted proxies configured, entries that are themselves
trusted proxies are skipped and the first other one is the client (nginx's
``real_ip_recursive``); with nothing configured, the right-most entry is the client. So the
usual case, one proxy sending ``X-Forwarded-For: 1.2.3.4``, gives client ``1.2.3.4`` (Ocsigen
answers 500 there), and a client cannot choose its address by sending its own header through
the proxy. The entries right of the client become ``request.forwarded_for``; the TCP peer stays in
``request.peer``.

``check-equal-ip="true"`` (Ocsigen's option) additionally requires the right-most entry to be the
TCP peer's own address (for proxies that append themselves); it is removed before the walk.

A header that names no valid address where the client should be is ignored (logged), never
an error. Both elements keep a page already found (Ocsigen drops it; ocsi answers
``Serve(page, request=…)``), but they belong before the content generators, since the steps before
them saw the proxy's address.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import ocsi
from ocsi import (
    DO_NOTHING,
    Answer,
    ContinueWith,
    Element,
    Found,
    LoadContext,
    ParseContext,
    Request,
    Serve,
    State,
    Step,
    parse_bool,
)

from .addresses import Network, canonical_address, in_any, parse_address, parse_networks

log = logging.getLogger("ocsi.ext.accesscontrol")

EXTENSION = "ocsi-ext-accesscontrol"


@dataclass(slots=True, frozen=True)
class AccessControlOptions:
    """What ``<extension findlib-package="ocsi-ext-accesscontrol">`` says."""

    #: ``None``: nothing configured (believe the peer, one hop).
    trusted_proxies: tuple[Network, ...] | None = None


def parse_options(options: list[Element], ctx: LoadContext | None = None) -> AccessControlOptions:
    nets: list[Network] = []
    for el in options:
        if el.tag != "trustedproxy":
            raise el.error(f"unknown option <{el.tag}> for ocsi-ext-accesscontrol",
                           hint='known here: trustedproxy (<trustedproxy value="10.0.0.0/8"/>)')
        el.check(attributes=["value"], children=())
        nets.extend(_networks(el, el.require("value", hint='<trustedproxy value="10.0.0.0/8"/>'),
                              "value"))
    return AccessControlOptions(tuple(nets) if options else None)


def _networks(el: Element, text: str, attribute: str) -> tuple[Network, ...]:
    try:
        return parse_networks(text)
    except ValueError as exc:
        raise el.error(f"bad trusted proxy list in attribute '{attribute}' of <{el.tag}>: {exc}",
                       hint="IPv4/IPv6 addresses or networks separated by spaces: "
                            '"127.0.0.1 10.0.0.0/8 ::1"') from None


def _trusted(el: Element, ctx: ParseContext) -> tuple[Network, ...] | None:
    if el.has("proxies"):
        return _networks(el, el.require("proxies"), "proxies")
    opts = ctx.options(EXTENSION)
    return opts.trusted_proxies if isinstance(opts, AccessControlOptions) else None


def forwarded_client(items: Sequence[str], peer: str, trusted: tuple[Network, ...] | None,
                     check_equal_ip: bool = False) -> tuple[str, tuple[str, ...]] | None:
    """``(client, proxies)`` from the ``X-Forwarded-For`` entries, or ``None`` to change nothing."""
    peer_addr = parse_address(peer)
    if trusted is not None and not in_any(trusted, peer_addr):
        return None
    entries = [i for i in (s.strip() for s in items) if i]
    if check_equal_ip:
        if not entries or peer_addr is None or parse_address(entries[-1]) != peer_addr:
            log.warning("X-Forwarded-For: host ip (%s) does not match the header (%s)",
                        peer, ", ".join(items))
            return None
        entries.pop()
    if not entries:
        return None
    i = len(entries) - 1
    if trusted is not None:
        while i > 0 and in_any(trusted, parse_address(entries[i])):
            i -= 1
    client = canonical_address(entries[i])
    if client is None:
        log.info("Malformed X-Forwarded-For field: %s", ", ".join(items))
        return None
    return client, tuple(entries[i + 1 :])


def _go_on_with(state: State, new: Request) -> Answer:
    """Continue with ``new``; a page already found is kept (Ocsigen's ContinueWith drops it)."""
    if type(state) is Found:
        return Serve(state.response, request=new)
    return ContinueWith(new)


class AllowForwardFor(Step):
    """``<allow-forward-for/>``: the client address becomes the one a trusted proxy announced."""

    def __init__(self, trusted: tuple[Network, ...] | None = None, check_equal_ip: bool = False,
                 where: str = "?") -> None:
        self.trusted = trusted
        self.check_equal_ip = check_equal_ip
        self.where = where

    async def handle(self, request: Request, state: State) -> Answer:
        items = request.headers.get_list("x-forwarded-for")
        if not items:
            return DO_NOTHING
        found = forwarded_client(items, request.peer, self.trusted, self.check_equal_ip)
        if found is None:
            return DO_NOTHING
        client, proxies = found
        new = request.replace(client=client, forwarded_for=proxies)
        return _go_on_with(state, new)


class AllowForwardProto(Step):
    """``<allow-forward-proto/>``: ``X-Forwarded-Proto: https|http`` from a trusted proxy sets
    whether the request counts as secure (``<ssl/>``, the scheme of absolute redirects)."""

    def __init__(self, trusted: tuple[Network, ...] | None = None, where: str = "?") -> None:
        self.trusted = trusted
        self.where = where

    async def handle(self, request: Request, state: State) -> Answer:
        values = request.headers.get_list("x-forwarded-proto")
        if not values:
            return DO_NOTHING
        if self.trusted is not None and not in_any(self.trusted, parse_address(request.peer)):
            return DO_NOTHING
        proto = values[-1].lower()  # the right-most value is the one the nearest proxy wrote
        if proto == "https":
            secure = True
        elif proto == "http":
            secure = False
        else:
            log.info("Malformed X-Forwarded-Proto field: %s", ", ".join(values))
            return DO_NOTHING
        if bool(request.secure) == secure:
            return DO_NOTHING
        new = request.replace(secure=secure)
        return _go_on_with(state, new)


# -- Python constructors ---------------------------------------------------------------------------
def _python_trusted(proxies: str | Sequence[str] | None) -> tuple[Network, ...] | None:
    if proxies is None:
        return None
    text = proxies if isinstance(proxies, str) else " ".join(proxies)
    return parse_networks(text)


def allow_forward_for(check_equal_ip: bool = False,
                      proxies: str | Sequence[str] | None = None) -> Step:
    """``allow_forward_for(proxies=["10.0.0.0/8"])``; ``proxies=None`` believes the peer, one hop."""
    return AllowForwardFor(_python_trusted(proxies), check_equal_ip, "<python>")


def allow_forward_proto(proxies: str | Sequence[str] | None = None) -> Step:
    return AllowForwardProto(_python_trusted(proxies), "<python>")


# -- XML -------------------------------------------------------------------------------------------
_PROXIES = ocsi.AttributeDoc("proxies", "the trusted proxies: addresses or networks separated by spaces",
                             "the <trustedproxy> options, else the TCP peer for one hop")


@ocsi.documents(ocsi.ElementDoc(
    "allow-forward-for", "the client address becomes the one a trusted proxy put in X-Forwarded-For",
    attributes=[ocsi.AttributeDoc("check-equal-ip", "true: the right-most entry must be the TCP peer's "
                                  "own address", "`false`"),
                _PROXIES]))
def parse_allow_forward_for(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["check-equal-ip", "proxies"], children=())
    check = el.attr_value("check-equal-ip", parse_bool, False)
    return AllowForwardFor(_trusted(el, ctx), check)


@ocsi.documents(ocsi.ElementDoc(
    "allow-forward-proto", "the scheme becomes the one a trusted proxy put in X-Forwarded-Proto",
    attributes=[_PROXIES]))
def parse_allow_forward_proto(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["proxies"], children=())
    return AllowForwardProto(_trusted(el, ctx))


PARSERS = {
    "allow-forward-for": parse_allow_forward_for,
    "allow-forward-proto": parse_allow_forward_proto,
}

__all__ = ["AccessControlOptions", "AllowForwardFor", "AllowForwardProto", "allow_forward_for",
           "allow_forward_proto", "forwarded_client", "parse_options"]
