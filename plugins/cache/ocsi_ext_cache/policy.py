"""RFC 9111's rules for a shared cache: what may be stored, for how long it is fresh, how old a
stored response is, and whether a stale one may still be used (RFC 5861's extensions).

Pure functions over header lists, so the rules are tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ocsi
from ocsi.httputil import parse_http_date

#: Statuses RFC 9111 §4.2.2 lets a cache give heuristic freshness to; also what is stored by
#: default (an explicit lifetime or ``default=`` makes them fresh).
DEFAULT_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
#: Heuristic freshness: this fraction of the time since Last-Modified, at most a day.
HEURISTIC_FRACTION = 0.1
HEURISTIC_MAX = 86400.0
#: Headers never stored with an entry (hop-by-hop, or the server's own framing).
NOT_STORED = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length", "age",
                        "cache-status", "proxy-authenticate"})


def cache_control(values: Iterable[str]) -> dict[str, str | None]:
    """``Cache-Control`` fields as ``{directive: argument or None}`` (names lower case,
    quotes removed; the first of a repeated directive wins, as RFC 9111 §4.2.1 advises)."""
    out: dict[str, str | None] = {}
    for value in values:
        for part in _split(value):
            name, eq, arg = part.partition("=")
            name = name.strip().lower()
            if not name or name in out:
                continue
            arg = arg.strip()
            if eq and len(arg) >= 2 and arg[0] == '"' and arg[-1] == '"':
                arg = arg[1:-1]
            out[name] = arg if eq else None
    return out


def _split(value: str) -> list[str]:
    """Split on commas outside quoted strings (``private="a, b"``)."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (q.strip() for q in parts) if p]


def seconds(directives: dict[str, str | None], name: str) -> int | None:
    """A delta-seconds argument; ``None`` when absent or invalid (an invalid ``max-age`` on a
    response makes it stale, RFC 9111 §4.2.1: the caller treats it as 0)."""
    if name not in directives:
        return None
    arg = directives[name]
    if arg is None or not arg.isdigit():
        return -1
    return min(int(arg), 2**31)


def field_names(arg: str | None) -> list[str]:
    """The field names of a qualified ``private="…"`` or ``no-cache="…"``."""
    return [n.strip().lower() for n in (arg or "").split(",") if n.strip()]


@dataclass(slots=True)
class Decision:
    """What to do with a response: store it (``reason`` empty) or not (why not), and the
    header fields to leave out of the entry."""

    store: bool
    reason: str = ""
    strip: tuple[str, ...] = ()


def storable(method: str, status: int, request_headers: ocsi.Headers,
             response_headers: ocsi.Headers, statuses: frozenset[int], *,
             lifetime_known: bool, store_cookies: bool) -> Decision:
    """RFC 9111 §3 for a shared cache, with the cache's own choices (``statuses``, cookies)."""
    if method != "GET":
        return Decision(False, "method")
    if status not in statuses:
        return Decision(False, "status")
    req = cache_control(request_headers.get_all("cache-control"))
    if "no-store" in req:
        return Decision(False, "request no-store")
    cc = cache_control(response_headers.get_all("cache-control"))
    if "no-store" in cc:
        return Decision(False, "no-store")
    strip: list[str] = []
    if "private" in cc:
        names = field_names(cc["private"])
        if not names:
            return Decision(False, "private")
        strip.extend(names)  # a shared cache stores the rest (§5.2.2.7)
    if "no-cache" in cc:
        strip.extend(field_names(cc["no-cache"]))
    if "authorization" in request_headers and not (
            "public" in cc or "s-maxage" in cc or "must-revalidate" in cc):
        return Decision(False, "authorization")  # §3.5
    if any(v.strip() == "*" for v in response_headers.get_list("vary")):
        return Decision(False, "vary *")
    if "set-cookie" in response_headers and "set-cookie" not in strip and not store_cookies:
        return Decision(False, "set-cookie")
    validators = "etag" in response_headers or "last-modified" in response_headers
    if not (lifetime_known or validators or "public" in cc):
        return Decision(False, "no lifetime")
    return Decision(True, strip=tuple(strip))


def explicit_lifetime(headers: ocsi.Headers, date: float) -> float | None:
    """``s-maxage``, ``max-age`` or ``Expires - Date`` (§4.2.1); ``None`` without any."""
    cc = cache_control(headers.get_all("cache-control"))
    for name in ("s-maxage", "max-age"):
        value = seconds(cc, name)
        if value is not None:
            return float(max(value, 0))
    expires = headers.get("expires")
    if expires is not None:
        when = parse_http_date(expires)
        if when is None:  # an invalid Expires ("0") means already expired
            return 0.0
        return max(0.0, when - date)
    return None


def heuristic_lifetime(headers: ocsi.Headers, date: float) -> float | None:
    """10 % of the time since ``Last-Modified``, at most a day (§4.2.2), when asked for."""
    modified = headers.get("last-modified")
    when = parse_http_date(modified) if modified else None
    if when is None or when >= date:
        return None
    return min(HEURISTIC_MAX, (date - when) * HEURISTIC_FRACTION)


def response_date(headers: ocsi.Headers, response_time: float) -> float:
    when = parse_http_date(headers.get("date") or "")
    return response_time if when is None else when


def initial_age(headers: ocsi.Headers, request_time: float, response_time: float) -> float:
    """``corrected_initial_age`` of §4.2.3, at the time the response was received."""
    age_value = 0.0
    age = headers.get("age")
    if age and age.strip().isdigit():
        age_value = float(int(age.strip()))
    date = response_date(headers, response_time)
    apparent = max(0.0, response_time - date)
    corrected = age_value + (response_time - request_time)
    return max(apparent, corrected)


def request_wants_fresh(request_headers: ocsi.Headers) -> tuple[bool, int | None]:
    """Whether the client asks for the origin to be checked (``no-cache``, ``max-age=0``,
    ``Pragma: no-cache`` without ``Cache-Control``), and its ``max-stale`` tolerance is not
    honoured (a shared cache serves stale only by the response's own leave)."""
    cc = cache_control(request_headers.get_all("cache-control"))
    if not cc and "no-cache" in (request_headers.get("pragma") or "").lower():
        return True, None
    max_age = seconds(cc, "max-age")
    return ("no-cache" in cc or max_age == 0), max_age
