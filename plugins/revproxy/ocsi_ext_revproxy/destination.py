"""Where a request goes: ``dest`` templates (``\\1``…``\\9``, the old ``$1``) and the URLs they
expand to.

A destination is an absolute ``http`` or ``https`` URL with the ``/`` after its authority
(``http://backend:8080/app/\\1``). Its scheme, host and port decide where ocsi connects (never
the client's ``Host``, whatever ``keephost`` says); its path and query are the request target
the backend receives, exactly as written after expansion: nothing is decoded or encoded again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ocsi import GroupTemplate, RegexMatch
from ocsi.httputil import split_host_port

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
#: What a target expanded from the match may not hold.
_BAD_TARGET = re.compile(r"[ \r\n\t#]").search
_URL = re.compile(r"(?i)(https?)://([^/?#]+)(/[^#]*)?")


class DestinationError(ValueError):
    """``dest`` is not (or did not expand to) an ``http(s)://host[:port]/…`` URL."""


@dataclass(frozen=True, slots=True)
class Origin:
    """The server ocsi connects to: what the connection pool is keyed on."""

    scheme: str
    host: str  # without brackets
    port: int
    #: ``host[:port]`` as a ``Host`` header names it (the port left out when default): made
    #: once, the proxy sends it with every request.
    authority: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        object.__setattr__(self, "authority",
                           host if self.port == default else f"{host}:{self.port}")

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}"


@dataclass(frozen=True, slots=True)
class Destination:
    origin: Origin
    #: The request target sent to the backend: path and query, as expanded.
    target: str


def parse_destination(url: str) -> Destination:
    """``http://host:port/path?q`` → where to connect and what to ask; DestinationError else."""
    m = _URL.fullmatch(url.strip())
    if m is None:
        raise DestinationError(f"{url!r} is not an http:// or https:// URL with a path "
                               "(the / after the host is required)")
    scheme, authority, target = m.group(1).lower(), m.group(2), m.group(3)
    if target is None:
        raise DestinationError(f"{url!r} has no path (the / after the host is required: "
                               f"{url}/ for the root)")
    if "@" in authority:
        raise DestinationError(f"{url!r}: user information in a destination is not supported")
    host, port_text = split_host_port(authority)
    if not _HOST.fullmatch(host):
        raise DestinationError(f"{url!r}: {host!r} is not a host name or address")
    if host.startswith("["):
        host = host[1:-1]
    if not host:
        raise DestinationError(f"{url!r} has no host")
    if port_text is None or port_text == "":
        port = 443 if scheme == "https" else 80
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise DestinationError(f"{url!r}: {port_text!r} is not a port")
    if any(c in target for c in " \r\n\t"):
        raise DestinationError(f"{url!r}: white space in the path")
    return Destination(Origin(scheme, host.lower(), port), target)


class Template:
    """A ``dest`` with group references (``\\N``, and ``$N`` for the pre-1.2 syntax)."""

    __slots__ = ("text", "_template", "_origin", "_prefix_len", "_static")

    def __init__(self, text: str, groups: int) -> None:
        self.text = text
        try:
            self._template = GroupTemplate(text, groups, dollar=True)
        except ValueError as exc:
            raise DestinationError(str(exc)) from None
        self._origin: Origin | None = None  # when scheme and authority are written out
        self._prefix_len = 0
        self._static: Destination | None = None

    @property
    def static(self) -> bool:
        return self._template.static

    def expand(self, match: RegexMatch) -> str:
        return self._template.expand(match)

    def check_static_part(self) -> None:
        """Check what is written out before the first group: the scheme, and the authority
        when it is complete there (then kept, so a request only builds its target);
        DestinationError when that cannot become a destination."""
        if self.static:
            self._static = parse_destination(self.text)
            return
        prefix = self._template.literal_prefix
        if not prefix:
            return  # all of it comes from the match: checked per request
        lower = prefix.lower()
        if not (lower.startswith(("http://", "https://")) or "http://".startswith(lower)
                or "https://".startswith(lower)):
            raise DestinationError(f"{self.text!r} is not an http:// or https:// URL")
        scheme_end = lower.find("://")
        if scheme_end >= 0:
            slash = prefix.find("/", scheme_end + 3)
            if slash >= 0:
                self._origin = parse_destination(prefix[:slash + 1]).origin
                self._prefix_len = slash

    def destination(self, match: RegexMatch) -> Destination:
        """Where this request goes; DestinationError when it does not expand to a URL."""
        if self._static is not None:
            return self._static
        text = self.expand(match)
        if self._origin is None:
            return parse_destination(text)
        target = text[self._prefix_len:]
        if _BAD_TARGET(target):
            raise DestinationError(f"{text!r}: white space in the path")
        return Destination(self._origin, target)
