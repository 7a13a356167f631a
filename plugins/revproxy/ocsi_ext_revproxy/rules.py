"""``<revproxy>`` attributes → a :class:`Rule`: what to match, where to send, how.

Forms, as Ocsigen has them (one of the first three is required):

- ``suburl="R"``: ``R`` is matched (anchored) against the sub-path below the site, with
  ``?query`` when there is one, still percent-encoded as the client sent it;
- ``fullurl="R"`` (and 5.0.1's ``regexp="R"``): against
  ``http[s]://host[:port]/path[?query]`` (the port only when not the scheme's default);
- the pre-1.2 form ``regexp="R" server="H" port="P" uri="U" protocol="http|https"``: ``R`` on
  the sub-path, ``$N`` in ``uri``.

``dest`` expands ``\\1``…``\\9``; several URLs separated by white space are several
destinations (ocsi). ``keephost="keephost"`` sends the client's ``Host``; ``nopipeline="nopipeline"``
opens a new connection for each request. ocsi's own attributes: ``balance``, ``failtimeout``,
``connecttimeout``, ``responsetimeout``, ``idletimeout``, ``cafile``, ``insecure``,
``forwarded``, ``rewritelocation``, ``requestbuffer``, ``websocket-max-message`` (see the
README).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from ocsi import (Element, ParseContext, Regex, RegexMatch, ValueFormatError, parse_regex, parse_seconds,
                  parse_size)

from .balance import POLICIES
from .destination import Destination, DestinationError, Template

ATTRIBUTES = ["suburl", "fullurl", "regexp", "dest", "keephost", "nopipeline", "server", "port",
              "uri", "protocol", "balance", "failtimeout", "connecttimeout", "responsetimeout",
              "idletimeout", "cafile", "insecure", "forwarded", "rewritelocation", "requestbuffer",
              "websocket-max-message"]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_RESPONSE_TIMEOUT = 60.0
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_FAIL_TIMEOUT = 10.0
#: The ASGI extension's bound on a client's WebSocket message, here both ways.
DEFAULT_WEBSOCKET_MAX_MESSAGE = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """How HTTPS destinations are verified: the system's CAs, a CA file, or (``insecure``) not."""

    cafile: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


@dataclass(frozen=True)
class Rule:
    regex: Regex
    full_url: bool
    dests: tuple[Template, ...]
    keephost: bool = False
    pipeline: bool = True
    balance: str = "roundrobin"
    fail_timeout: float = DEFAULT_FAIL_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    tls: TLSOptions = field(default_factory=TLSOptions)
    forwarded: bool = False
    #: Location/Refresh naming the destination rewritten to the client's host (redirects.py).
    rewrite_location: bool = False
    #: Chunked request bodies buffered up to this many bytes (buffering.py); ``None``: only
    #: to backends seen answering in HTTP/1.0; 0: never.
    request_buffer: int | None = None
    #: The largest WebSocket message relayed either way (wsframes.py); ``None``: no bound.
    websocket_max_message: int | None = DEFAULT_WEBSOCKET_MAX_MESSAGE

    def expand(self, match: RegexMatch) -> list[Destination]:
        """The destinations for one match; DestinationError when one is not a URL."""
        return [t.destination(match) for t in self.dests]


def compile_pattern(pattern: str) -> Regex:
    return parse_regex(pattern)  # ValueFormatError is a ValueError


def make_rule(*, suburl: str | None = None, fullurl: str | None = None,
              dest: str | list[str], keephost: bool = False, pipeline: bool = True,
              balance: str = "roundrobin", fail_timeout: float = DEFAULT_FAIL_TIMEOUT,
              connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
              response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
              idle_timeout: float = DEFAULT_IDLE_TIMEOUT, cafile: str | None = None,
              insecure: bool = False, forwarded: bool = False, rewrite_location: bool = False,
              request_buffer: int | None = None,
              websocket_max_message: int | None = DEFAULT_WEBSOCKET_MAX_MESSAGE) -> Rule:
    """A rule from Python values; ``ValueError`` (with the reason) for a bad combination."""
    if (suburl is None) == (fullurl is None):
        raise ValueError("give exactly one of suburl or fullurl")
    regex = compile_pattern(suburl if suburl is not None else fullurl)  # type: ignore[arg-type]  # exactly one is given
    texts = dest.split() if isinstance(dest, str) else list(dest)
    if not texts:
        raise ValueError("dest names no destination")
    templates = tuple(Template(t, regex.groups) for t in texts)
    for t in templates:
        t.check_static_part()
    tls = TLSOptions(cafile, insecure)
    if cafile is not None:
        try:
            tls.context()
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cafile={cafile!r} cannot be used: {exc}") from None
    if balance not in POLICIES:
        raise ValueError(f"balance={balance!r}: expected one of {', '.join(POLICIES)}")
    for name, value in (("failtimeout", fail_timeout), ("connecttimeout", connect_timeout),
                        ("responsetimeout", response_timeout), ("idletimeout", idle_timeout)):
        if value <= 0:
            raise ValueError(f"{name} must be more than 0 seconds")
    if request_buffer is not None and request_buffer < 0:
        raise ValueError("requestbuffer must be a size (0: never buffer)")
    if websocket_max_message is not None and websocket_max_message < 1:
        raise ValueError("websocket-max-message must be at least one byte")
    return Rule(regex, fullurl is not None, templates, keephost, pipeline, balance, fail_timeout,
                connect_timeout, response_timeout, idle_timeout, tls, forwarded, rewrite_location,
                request_buffer, websocket_max_message)


def _flag(el: Element, name: str) -> bool:
    """Ocsigen's ``keephost="keephost"``: the attribute's own name turns it on; ``true`` too."""
    value = el.get(name)
    return value is not None and value.strip().lower() in (name, "true", "yes", "1")


def _seconds(el: Element, name: str, default: float) -> float:
    return el.attr_value(name, parse_seconds, default)


def _request_buffer(el: Element) -> int | None:
    """``requestbuffer="10MB"``; ``infinity`` is refused (the bound is the point)."""
    if not el.has("requestbuffer"):
        return None
    size = el.attr_value("requestbuffer", parse_size, None)
    if size is None:
        raise el.error("requestbuffer needs a size (0: never buffer)", hint='e.g. requestbuffer="10MB"')
    return size


def parse_revproxy(el: Element, ctx: ParseContext) -> Rule:
    """Read one ``<revproxy>`` element (located errors)."""
    el.check(attributes=ATTRIBUTES)
    legacy = el.has("server")
    if legacy:
        for a in ("suburl", "fullurl", "dest"):
            if el.has(a):
                raise el.error(f"<revproxy server=…> (the pre-1.2 form) cannot have {a}=",
                               hint='write either regexp server port uri protocol, or suburl dest')
        suburl: str | None = el.require("regexp", hint="the pre-1.2 form matches regexp=")
        fullurl: str | None = None
        protocol = (el.get("protocol") or "http").lower()
        if protocol not in ("http", "https"):
            raise el.error(f"protocol={protocol!r}: expected http or https")
        port = el.get("port") or ("443" if protocol == "https" else "80")
        uri = el.get("uri") or "/"
        dest = f"{protocol}://{el.require('server')}:{port}{'' if uri.startswith('/') else '/'}{uri}"
    else:
        for a in ("port", "uri", "protocol"):
            if el.has(a):
                raise el.error(f"{a}= belongs to the pre-1.2 form, which needs server=",
                               hint='write dest="http://host:port/path" instead')
        given = [a for a in ("suburl", "fullurl", "regexp") if el.has(a)]
        if not given:
            raise el.error("Missing attribute 'regexp' for <revproxy>",
                           hint='write suburl="REGEXP" (the sub-path) or fullurl="REGEXP"')
        if len(given) > 1:
            raise el.error(f"<revproxy> takes one of suburl, fullurl or regexp, not {' and '.join(given)}")
        suburl = el.get("suburl")
        fullurl = el.get("fullurl") if el.has("fullurl") else el.get("regexp")
        if not el.has("dest"):
            raise el.error("Missing attribute 'dest' for <revproxy>",
                           hint='e.g. dest="http://127.0.0.1:8080/\\1"')
        dest = el.require("dest")
    ws_default: int | None = DEFAULT_WEBSOCKET_MAX_MESSAGE
    try:
        return make_rule(
            suburl=suburl, fullurl=fullurl, dest=dest, keephost=_flag(el, "keephost"),
            pipeline=not _flag(el, "nopipeline"), balance=el.get("balance") or "roundrobin",
            fail_timeout=_seconds(el, "failtimeout", DEFAULT_FAIL_TIMEOUT),
            connect_timeout=_seconds(el, "connecttimeout", DEFAULT_CONNECT_TIMEOUT),
            response_timeout=_seconds(el, "responsetimeout", DEFAULT_RESPONSE_TIMEOUT),
            idle_timeout=_seconds(el, "idletimeout", DEFAULT_IDLE_TIMEOUT),
            cafile=el.get("cafile"), insecure=_flag(el, "insecure"),
            forwarded=_flag(el, "forwarded"), rewrite_location=_flag(el, "rewritelocation"),
            request_buffer=_request_buffer(el),
            websocket_max_message=el.attr_value("websocket-max-message", parse_size,
                                                ws_default))
    except (ValueError, DestinationError, ValueFormatError) as exc:
        raise el.error(str(exc)) from None
