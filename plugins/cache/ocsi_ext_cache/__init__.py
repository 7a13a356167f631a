"""ocsi-ext-cache: a shared HTTP cache (RFC 9111) for the answers of the steps after
``<cache/>`` in its host or site, as nginx's ``proxy_cache``. See README.md.

From Python::

    from ocsi_ext_cache import cache
    steps = [cache(directory="/var/lib/ocsi/cache/site", default={None: 60}), proxy(...)]
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from typing import Any

import ocsi
from ocsi import Element, ParseContext, Request, Step, parse_bool, parse_size

from . import policy
from .step import Cache, Settings, registry, url_key
from .store import Store

__all__ = ["Cache", "cache", "Settings"]

DEFAULT_MEMORY = 64 * 1024 * 1024
DEFAULT_MEMORY_ENTRY = 256 * 1024
DEFAULT_SIZE = 1024 * 1024 * 1024
DEFAULT_MAX_ENTRY = 256 * 1024 * 1024
#: The most ``bypass`` conditions, and the longest name one tests.
MAX_CONDITIONS = 32


def bypass_condition(spec: str) -> Callable[[Request], bool]:
    """``header:NAME`` (present, not empty nor ``0``), ``cookie:NAME`` or ``arg:NAME`` (a query
    argument): nginx's ``proxy_cache_bypass`` on variables. ``ValueError`` otherwise."""
    kind, _, name = spec.partition(":")
    name = name.strip()
    if not name or len(name) > 256 or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise ValueError(f"{spec!r}: a condition is header:NAME, cookie:NAME or arg:NAME")
    if kind == "header":
        low = name.lower()

        def header(request: Request) -> bool:
            value = request.headers.get(low)
            return value is not None and value.strip() not in ("", "0")
        return header
    if kind == "cookie":
        def cookie(request: Request) -> bool:
            for line in request.headers.get_all("cookie"):
                for pair in line.split(";"):
                    if pair.split("=", 1)[0].strip() == name:
                        return True
            return False
        return cookie
    if kind == "arg":
        def arg(request: Request) -> bool:
            return any(p.split("=", 1)[0] == name for p in (request.query or "").split("&"))
        return arg
    raise ValueError(f"{spec!r}: a condition is header:NAME, cookie:NAME or arg:NAME")


def parse_statuses(text: str) -> frozenset[int]:
    out = set()
    for word in text.replace(",", " ").split():
        if not word.isdigit() or not 200 <= int(word) <= 599 or int(word) in (206, 304):
            raise ocsi.ValueFormatError(f"{word!r} is not a status a cache stores "
                                        "(200 to 599, not 206 or 304)")
        out.add(int(word))
    if not out:
        raise ocsi.ValueFormatError("no status given")
    return frozenset(out)


def parse_default(text: str) -> dict[int | None, float]:
    """``10min`` (every stored status) or nginx's ``proxy_cache_valid`` by status:
    ``200 301 10min; 404 1min`` (a part without statuses is for the others)."""
    out: dict[int | None, float] = {}
    for part in text.split(";"):
        words = part.split()
        if not words:
            continue
        lifetime = ocsi.parse_seconds(words[-1])
        statuses = [None] if len(words) == 1 else sorted(parse_statuses(" ".join(words[:-1])))
        for status in statuses:
            if status in out:
                raise ocsi.ValueFormatError(f"status {status or 'any'} is given two lifetimes")
            out[status] = lifetime
    if not out:
        raise ocsi.ValueFormatError("no lifetime given")
    return out


def cache(*, directory: str | None = None, memory: int = DEFAULT_MEMORY,
          memory_entry: int = DEFAULT_MEMORY_ENTRY, size: int = DEFAULT_SIZE,
          max_entry: int = DEFAULT_MAX_ENTRY,
          default: float | dict[int | None, float] | None = None,
          statuses: frozenset[int] = policy.DEFAULT_STATUSES, heuristic: bool = False,
          stale_while_revalidate: float = 0.0, stale_if_error: float = 0.0, lock: bool = True,
          lock_timeout: float = 5.0, cookies: str = "skip", bypass: list[str] | None = None,
          name: str = "ocsi", inactive: float | None = None,
          request_controls: bool = True) -> Cache:
    """The step ``<cache>`` builds; ``directory``: its files (shared by the workers), else
    memory only. ``ValueError`` for a bad value."""
    if cookies not in ("skip", "store"):
        raise ValueError(f'cookies must be "skip" or "store", not {cookies!r}')
    if max_entry < 1 or size < 1 or memory < 0 or memory_entry < 0:
        raise ValueError("sizes must be positive")
    if directory is not None and max_entry > size:
        raise ValueError(f"maxentry ({max_entry}) cannot be above size ({size})")
    if directory is None:
        max_entry = min(max_entry, memory_entry, memory)
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}", name):
        raise ValueError(f"name must be a token (letters, digits, '-', '.'), not {name!r}")
    conditions = [bypass_condition(c) for c in (bypass or [])]
    if len(conditions) > MAX_CONDITIONS:
        raise ValueError(f"at most {MAX_CONDITIONS} bypass conditions")
    if default is None:
        default = {}
    elif not isinstance(default, dict):
        default = {None: float(default)}
    if any(v < 0 for v in default.values()):
        raise ValueError("default cannot be negative")
    # a status given a lifetime is one to store, as with nginx's proxy_cache_valid
    statuses = statuses | {s for s in default if s is not None}
    for value, what in ((stale_while_revalidate, "stale-while-revalidate"),
                        (stale_if_error, "stale-if-error"), (lock_timeout, "locktimeout")):
        if value is not None and value < 0:
            raise ValueError(f"{what} cannot be negative")
    settings = Settings(statuses=statuses, default=default, heuristic=heuristic,
                        max_entry=max_entry, swr=stale_while_revalidate, sie=stale_if_error,
                        lock=lock, lock_timeout=lock_timeout, store_cookies=cookies == "store",
                        name=name, bypass=conditions, request_controls=request_controls)
    if inactive is not None and inactive <= 0:
        raise ValueError("inactive must be more than 0 seconds")
    return Cache(Store(directory, memory=memory, memory_entry=memory_entry, size=size,
                       inactive=inactive), settings)


def _zone(el: Element) -> str:
    zone = el.get("zone")
    if zone is not None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", zone) or zone in (".", ".."):
            raise el.error("zone must be 1 to 64 letters, digits, '-', '_' or '.', "
                           f"not {zone!r}")
        return zone
    return "cache-" + hashlib.sha256(el.where.encode()).hexdigest()[:16]


def _request_controls(el: Element) -> bool:
    value = el.get("requestcontrols", "honour")
    if value not in ("honour", "ignore"):
        raise el.error(f'<cache>: requestcontrols must be "honour" or "ignore", not {value!r}')
    return value == "honour"


def _size(text: str) -> int:
    value = parse_size(text)
    if value is None:
        raise ocsi.ValueFormatError("the cache needs a bound: infinity is not allowed here")
    return value


def _duration(text: str) -> float:
    return ocsi.parse_seconds(text)


_ATTRIBUTES = [
    ocsi.AttributeDoc("default", "how long an answer without a lifetime of its own (no "
                      "max-age, s-maxage nor Expires) is fresh: `10min`, or by status as nginx's "
                      "proxy_cache_valid: `200 301 10min; 404 1min` (a part without statuses is "
                      "for the others); without it such answers are stored only when they have "
                      "a validator", "none"),
    ocsi.AttributeDoc("statuses", "the statuses stored, separated by spaces",
                      "`200 203 204 300 301 308 404 405 410 414 501`"),
    ocsi.AttributeDoc("bypass", "conditions, separated by spaces, any of which makes a request "
                      "go behind without the cache: `header:NAME` (present, not empty nor 0), "
                      "`cookie:NAME`, `arg:NAME` (a query argument)", "none"),
    ocsi.AttributeDoc("maxentry", "the largest body stored (larger ones pass through)",
                      "`256MiB`; without <datadir>, `memoryentry`"),
    ocsi.AttributeDoc("size", "the bytes of files under <datadir>/cache/ZONE; least recently "
                      "used out first", "`1GiB`"),
    ocsi.AttributeDoc("memory", "the bytes of bodies a worker keeps in memory", "`64MiB`"),
    ocsi.AttributeDoc("memoryentry", "the largest body kept in memory; larger ones are files, "
                      "streamed in and out", "`256KiB`"),
    ocsi.AttributeDoc("inactive", "files not used for this long are removed, fresh or not "
                      "(nginx's inactive=), by a scan every half of it (at most 10 minutes)",
                      "none: only `size` bounds them"),
    ocsi.AttributeDoc("heuristic", "true: an answer with Last-Modified and no lifetime is fresh "
                      "for 10 % of its age, at most a day (RFC 9111 §4.2.2)", "`false`"),
    ocsi.AttributeDoc("stale-while-revalidate", "a stale answer is served while a request "
                      "behind revalidates it for this long past its lifetime (besides the "
                      "answer's own Cache-Control: stale-while-revalidate)", "`0`"),
    ocsi.AttributeDoc("stale-if-error", "a stale answer is served when behind fails (an error, "
                      "500, 502, 503, 504) for this long past its lifetime (besides the "
                      "answer's own stale-if-error)", "`0`"),
    ocsi.AttributeDoc("lock", "concurrent misses for one key make one request behind, the "
                      "others wait for its answer (nginx's proxy_cache_lock)", "`true`"),
    ocsi.AttributeDoc("locktimeout", "how long a request waits for another's answer before "
                      "going behind itself", "`5`"),
    ocsi.AttributeDoc("cookies", "`skip`: answers with Set-Cookie are not stored (as nginx); "
                      "`store`: stored with it, as RFC 9111 allows", "`skip`"),
    ocsi.AttributeDoc("name", "the cache's name in the Cache-Status field", "`ocsi`"),
    ocsi.AttributeDoc("requestcontrols", "`honour`: a request's Cache-Control no-cache, "
                      "max-age=0, only-if-cached and Pragma: no-cache are obeyed (RFC 9111); "
                      "`ignore`: they are not, so clients cannot make requests go behind (as "
                      "nginx)", "`honour`"),
    ocsi.AttributeDoc("zone", "the directory under <datadir>/cache: elements with the same zone "
                      "share their entries, and a reload that moves the element keeps them",
                      "one per element"),
]


@ocsi.documents(ocsi.ElementDoc(
    "cache", "caches the answers of the steps after it in its host or site (RFC 9111, as a "
    "shared cache), in memory and in files under <datadir> shared by the workers",
    attributes=_ATTRIBUTES))
def parse_cache(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=[a.name for a in _ATTRIBUTES])
    datadir = ctx.settings.datadir
    directory = os.path.join(datadir, "cache", _zone(el)) if datadir is not None else None
    bypass = (el.get("bypass") or "").split()
    memory_entry = el.attr_value("memoryentry", _size, DEFAULT_MEMORY_ENTRY)
    default_max = DEFAULT_MAX_ENTRY if directory is not None else memory_entry
    try:
        step = cache(
            directory=directory, memory=el.attr_value("memory", _size, DEFAULT_MEMORY),
            memory_entry=memory_entry, size=el.attr_value("size", _size, DEFAULT_SIZE),
            max_entry=el.attr_value("maxentry", _size, default_max),
            default=el.attr_value("default", parse_default, None),
            statuses=el.attr_value("statuses", parse_statuses, policy.DEFAULT_STATUSES),
            heuristic=el.attr_value("heuristic", parse_bool, False),
            stale_while_revalidate=el.attr_value("stale-while-revalidate", _duration, 0.0),
            stale_if_error=el.attr_value("stale-if-error", _duration, 0.0),
            lock=el.attr_value("lock", parse_bool, True),
            lock_timeout=el.attr_value("locktimeout", _duration, 5.0),
            cookies=el.get("cookies", "skip") or "skip", bypass=bypass,
            name=el.get("name", "ocsi") or "ocsi",
            inactive=el.attr_value("inactive", _duration, None),
            request_controls=_request_controls(el))
    except ValueError as exc:
        raise el.error(f"<cache>: {exc}") from None
    step.where = el.where
    return step


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"cache": parse_cache}


@ocsi.hookimpl
def ocsi_clear_caches() -> None:
    for c in list(registry):
        c.clear()


def purge(args: list[str]) -> str:
    """``cache:purge URL…``: remove the entries of these URLs (every variant) from every cache."""
    if not args:
        return "usage: cache:purge URL…"
    out = []
    for url in args:
        try:
            key = url_key(url)
        except ValueError as exc:
            out.append(str(exc))
            continue
        removed = sum(1 for c in list(registry) if c.purge(key))
        out.append(f"{url}: {'purged' if removed else 'not cached'}")
    return "; ".join(out)


@ocsi.hookimpl
def ocsi_commands() -> dict[str, Any]:
    return {"purge": purge}
