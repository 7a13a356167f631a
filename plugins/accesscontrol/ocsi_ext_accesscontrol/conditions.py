"""Conditions of ``<if>``: what they test, how they are parsed, and their Python constructors.

A condition is a callable ``condition(request) -> bool``, built once at configuration time
(regexps compiled, networks turned into integers) so a test per request is cheap. Conditions
combine with ``&``, ``|`` and ``~`` in Python, or with ``<and>``, ``<or>`` and ``<not>`` in XML.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from ocsi import Element, Regex, Request, ValueFormatError, parse_int, parse_regex

from .addresses import Network, parse_address, parse_network

log = logging.getLogger("ocsi.ext.accesscontrol")

_KNOWN_METHODS = frozenset(
    "GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH".split()
)


class Condition:
    """Base class: subclasses implement :meth:`__call__`."""

    __slots__ = ()

    def __call__(self, request: Request) -> bool:
        raise NotImplementedError

    def __and__(self, other: Condition) -> Condition:
        return And((self, other))

    def __or__(self, other: Condition) -> Condition:
        return Or((self, other))

    def __invert__(self) -> Condition:
        return Not(self)


class Ip(Condition):
    """The client address is inside ``network``.

    The client is the TCP peer, or the address a trusted ``<allow-forward-for/>`` put in its
    place earlier in the chain (Ocsigen never matches forwarded clients; ocsi does).
    """

    __slots__ = ("network",)

    def __init__(self, network: Network) -> None:
        self.network = network

    def __call__(self, request: Request) -> bool:
        return parse_address(request.client) in self.network

    def __repr__(self) -> str:
        return f"ip({self.network.text!r})"


class Port(Condition):
    """The request arrived on listening port ``port`` (not the port of the Host header)."""

    __slots__ = ("port",)

    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(self, request: Request) -> bool:
        return request.port == self.port

    def __repr__(self) -> str:
        return f"port({self.port})"


class Ssl(Condition):
    """The connection is TLS, or a trusted ``<allow-forward-proto/>`` said ``https``."""

    __slots__ = ()

    def __call__(self, request: Request) -> bool:
        return bool(request.secure)

    def __repr__(self) -> str:
        return "ssl()"


class Header(Condition):
    """Some line of header ``name`` (any case) fully matches ``regexp`` (case-sensitive)."""

    __slots__ = ("name", "regexp")

    def __init__(self, name: str, regexp: Regex) -> None:
        self.name = name.lower()
        self.regexp = regexp

    def __call__(self, request: Request) -> bool:
        full = self.regexp.matches
        return any(full(v) for v in request.headers.get_all(self.name))

    def __repr__(self) -> str:
        return f"header({self.name!r}, {self.regexp.pattern!r})"


class Method(Condition):
    """The request method equals ``method`` (case-sensitive, as methods are)."""

    __slots__ = ("method",)

    def __init__(self, method: str) -> None:
        self.method = method

    def __call__(self, request: Request) -> bool:
        return request.method == self.method

    def __repr__(self) -> str:
        return f"method({self.method!r})"


class Protocol(Condition):
    """The request's HTTP version is ``HTTP/x.y``."""

    __slots__ = ("full", "short")

    def __init__(self, version: str) -> None:
        self.full = version
        self.short = version[5:]  # the connection layer may give "1.1" or "HTTP/1.1"

    def __call__(self, request: Request) -> bool:
        v = request.version
        return v == self.short or v == self.full

    def __repr__(self) -> str:
        return f"protocol({self.full!r})"


class Path(Condition):
    """``regexp`` fully matches the percent-decoded sub-path (no leading ``/``, no query)."""

    __slots__ = ("regexp",)

    def __init__(self, regexp: Regex) -> None:
        self.regexp = regexp

    def __call__(self, request: Request) -> bool:
        return self.regexp.matches(request.sub_path_str)

    def __repr__(self) -> str:
        return f"path({self.regexp.pattern!r})"


class And(Condition):
    """All of ``conditions`` (true when empty)."""

    __slots__ = ("conditions",)

    def __init__(self, conditions: Iterable[Condition]) -> None:
        self.conditions = tuple(conditions)

    def __call__(self, request: Request) -> bool:
        return all(c(request) for c in self.conditions)

    def __repr__(self) -> str:
        return "and_(" + ", ".join(map(repr, self.conditions)) + ")"


class Or(Condition):
    """Any of ``conditions`` (false when empty)."""

    __slots__ = ("conditions",)

    def __init__(self, conditions: Iterable[Condition]) -> None:
        self.conditions = tuple(conditions)

    def __call__(self, request: Request) -> bool:
        return any(c(request) for c in self.conditions)

    def __repr__(self) -> str:
        return "or_(" + ", ".join(map(repr, self.conditions)) + ")"


class Not(Condition):
    __slots__ = ("condition",)

    def __init__(self, condition: Condition) -> None:
        self.condition = condition

    def __call__(self, request: Request) -> bool:
        return not self.condition(request)

    def __repr__(self) -> str:
        return f"not_({self.condition!r})"


# -- Python constructors (raise ValueError on bad input) -----------------------------------------
def _regexp(pattern: str) -> Regex:
    return parse_regex(pattern)  # ValueFormatError is a ValueError


def _version(value: str) -> str:
    if not re.fullmatch(r"HTTP/\d\.\d", value):
        raise ValueError(f"{value!r} is not an HTTP version (HTTP/1.0 or HTTP/1.1)")
    return value


def ip(value: str) -> Condition:
    """``ip("10.0.0.0/8")``, ``ip("::1")``: the client is in this network."""
    return Ip(parse_network(value))


def port(value: int) -> Condition:
    if not 0 <= int(value) <= 65535:
        raise ValueError(f"{value!r} is not a port number")
    return Port(int(value))


def ssl() -> Condition:
    return Ssl()


def header(name: str, regexp: str) -> Condition:
    if not name:
        raise ValueError("empty header name")
    return Header(name, _regexp(regexp))


def method(value: str) -> Condition:
    if not value:
        raise ValueError("empty method")
    return Method(value)


def protocol(value: str) -> Condition:
    return Protocol(_version(value))


def path(regexp: str) -> Condition:
    return Path(_regexp(regexp))


def and_(*conditions: Condition) -> Condition:
    return And(conditions)


def or_(*conditions: Condition) -> Condition:
    return Or(conditions)


def not_(condition: Condition) -> Condition:
    return Not(condition)


# -- XML -----------------------------------------------------------------------------------------
_EXAMPLES = {
    "ip": '<ip value="10.0.0.0/8"/>',
    "port": '<port value="8080"/>',
    "ssl": "<ssl/>",
    "header": '<header name="User-Agent" regexp=".*curl.*"/>',
    "method": '<method value="POST"/>',
    "protocol": '<protocol value="HTTP/1.1"/>',
    "path": '<path regexp="admin/.*"/>',
    "and": "<and><ssl/><port value=\"443\"/></and>",
    "or": "<or><ip value=\"10.0.0.0/8\"/><ip value=\"::1\"/></or>",
    "not": "<not><ssl/></not>",
}


def _leaf(el: Element, *attributes: str) -> list[str]:
    """Check a condition without children; return its (required) attribute values."""
    el.check(attributes=attributes, children=())
    values = []
    for name in attributes:
        if not el.has(name):
            raise el.error(f"bad syntax for condition <{el.tag}>: missing attribute '{name}'",
                           hint=f"write {_EXAMPLES[el.tag]}")
        values.append(el.require(name))
    return values


def _compiled(el: Element, attribute: str, pattern: str) -> Regex:
    try:
        return parse_regex(pattern)
    except ValueFormatError as exc:
        raise el.error(f"in <{el.tag}> condition: {exc}",
                       hint=f"attribute '{attribute}' is a regular expression matching the "
                            "whole value") from None


def _parse_ip(el: Element) -> Condition:
    (value,) = _leaf(el, "value")
    try:
        return Ip(parse_network(value))
    except ValueError:
        raise el.error(f"Bad ip/netmask [{value}] in <ip> condition",
                       hint="an IPv4 or IPv6 address, optionally with a prefix length: "
                            "10.0.0.0/8, 192.168.1.7, ::1, 2001:db8::/32") from None


def _parse_port(el: Element) -> Condition:
    (value,) = _leaf(el, "value")
    try:
        n = parse_int(value)
    except ValueFormatError:
        n = -1
    if not 0 <= n <= 65535:
        raise el.error(f"Bad port [{value}] in <port> condition",
                       hint="a port number between 0 and 65535")
    return Port(n)


def _parse_ssl(el: Element) -> Condition:
    _leaf(el)
    return Ssl()


def _parse_header(el: Element) -> Condition:
    name, regexp = _leaf(el, "name", "regexp")
    if not name.strip():
        raise el.error("empty header name in <header> condition")
    return Header(name.strip(), _compiled(el, "regexp", regexp))


def _parse_method(el: Element) -> Condition:
    (value,) = _leaf(el, "value")
    if not value:
        raise el.error("empty method in <method> condition", hint="write <method value=\"POST\"/>")
    if value not in _KNOWN_METHODS and value.upper() in _KNOWN_METHODS:
        log.warning("%s: <method value=\"%s\"/> never matches: methods are case-sensitive "
                    "(did you mean %s?)", el.where, value, value.upper())
    return Method(value)


def _parse_protocol(el: Element) -> Condition:
    (value,) = _leaf(el, "value")
    try:
        return Protocol(_version(value))
    except ValueError:
        raise el.error(f"Bad protocol [{value}] in <protocol> condition",
                       hint="HTTP/1.0 or HTTP/1.1") from None


def _parse_path(el: Element) -> Condition:
    (regexp,) = _leaf(el, "regexp")
    return Path(_compiled(el, "regexp", regexp))


def _parse_and(el: Element) -> Condition:
    el.check(children=None)
    return And(parse_condition(c) for c in el.children)


def _parse_or(el: Element) -> Condition:
    el.check(children=None)
    return Or(parse_condition(c) for c in el.children)


def _parse_not(el: Element) -> Condition:
    el.check(children=None)
    kids = el.children
    if len(kids) != 1:
        raise el.error(f"bad syntax for condition <not>: it takes exactly one condition, "
                       f"not {len(kids)}", hint="write <not><ssl/></not>")
    return Not(parse_condition(kids[0]))


PARSERS: dict[str, Callable[[Element], Condition]] = {
    "ip": _parse_ip,
    "port": _parse_port,
    "ssl": _parse_ssl,
    "header": _parse_header,
    "method": _parse_method,
    "protocol": _parse_protocol,
    "path": _parse_path,
    "and": _parse_and,
    "or": _parse_or,
    "not": _parse_not,
}


def is_condition(el: Element) -> bool:
    return el.tag in PARSERS


def parse_condition(el: Element) -> Condition:
    """Parse one condition element; errors are located and say what was expected."""
    parser = PARSERS.get(el.tag)
    if parser is None:
        raise el.error(f"<{el.tag}> is not a condition",
                       hint="conditions: " + ", ".join(f"<{t}>" for t in PARSERS))
    return parser(el)
