"""ocsi-ext-ratelimit: nginx's ``limit_req`` (``<ratelimit>``) and ``limit_conn``
(``<connlimit>``) for ocsi, counted once for all the workers of a machine. See README.md.

From Python::

    from ocsi_ext_ratelimit import ratelimit
    steps = [ratelimit(rate="10r/s", burst=20, directory="/var/lib/ocsi/ratelimit"), static(...)]
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile

import ocsi
from ocsi import Element, ParseContext, Step, parse_bool, parse_int

from .bucket import RECORD as RATE_RECORD
from .bucket import Bucket
from .cluster import ClusterBucket
from .connections import RECORD as CONN_RECORD
from .connections import Counter
from .steps import ConnLimit, RateLimit, key_function, release_counts
from .table import SharedTable, table_path

__all__ = ["RateLimit", "ConnLimit", "ratelimit", "connlimit", "parse_rate"]

#: The distribution that publishes the database ``shared="cluster"`` counts in, for the hint.
PGSQL = "ocsi-ext-ocsipersist-pgsql"
#: Keys a table holds by default (nginx's 1 MB zone holds about 16 000).
DEFAULT_SIZE = 16384
MAX_SIZE = 4_000_000

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*r/(s|m)\s*")


def parse_rate(text: str) -> float:
    """``10r/s`` or ``30r/m`` (nginx's spelling): requests per second."""
    m = _RATE.fullmatch(text)
    if m is None or float(m.group(1)) <= 0:
        raise ocsi.ValueFormatError(f"{text!r} is not a rate (examples: 10r/s, 30r/m)")
    return float(m.group(1)) / (1.0 if m.group(2) == "s" else 60.0)


def default_directory(datadir: str | None) -> str:
    """``<datadir>/ratelimit``; without a datadir, a directory of this user's in the
    temporary directory (the tables must be a file every worker can map)."""
    if datadir is not None:
        return os.path.join(datadir, "ratelimit")
    return os.path.join(tempfile.gettempdir(), f"ocsi-ratelimit-{os.getuid()}")


def _table(directory: str, zone: str, kind: str, record: struct.Struct, slots: int) -> SharedTable:
    return SharedTable(table_path(directory, zone, kind, slots), kind.encode().ljust(4, b"\0"),
                       record, slots)


def _status(status: int) -> int:
    if not 400 <= status <= 599:
        raise ValueError(f"status must be a 4xx or 5xx code, not {status}")
    return status


def _size(size: int) -> int:
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be between 1 and {MAX_SIZE} keys, not {size}")
    return size


def ratelimit(*, rate: str | float, burst: int = 0, nodelay: bool = False, delay: int = 0,
              key: str = "ip", status: int = 429, zone: str = "default",
              size: int = DEFAULT_SIZE, directory: str | None = None,
              cluster: ocsi.ClusterDatabase | None = None) -> RateLimit:
    """The step ``<ratelimit>`` builds. ``directory``: where the zone's table file lives
    (default: see :func:`default_directory`); ``cluster``: the cluster's database
    (``settings.cluster_database``), to count there for every server (``shared="cluster"``). ``ValueError`` for a bad
    value."""
    per_second = parse_rate(rate) if isinstance(rate, str) else float(rate)
    if per_second <= 0:
        raise ValueError("rate must be above 0")
    if burst < 0 or delay < 0:
        raise ValueError("burst and delay must be 0 or more requests")
    if delay > burst:
        raise ValueError(f"delay ({delay}) cannot be above burst ({burst})")
    table = _table(directory or default_directory(None), zone, "rate", RATE_RECORD, _size(size))
    delay_ = float(burst) if nodelay else float(delay)
    bucket = Bucket(table, per_second, burst, delay_)
    shared = None
    if cluster is not None:
        shared = ClusterBucket(cluster, zone, per_second, burst, delay_,
                               lambda k: hashlib.blake2b(k.encode("utf-8", "surrogateescape"),
                                                         digest_size=16).digest())
    return RateLimit(bucket, key_function(key), _status(status), shared)


def connlimit(*, max: int, key: str = "ip", status: int = 429, zone: str = "default",  # noqa: A002
              size: int = DEFAULT_SIZE, directory: str | None = None) -> ConnLimit:
    """The step ``<connlimit>`` builds: at most ``max`` requests of a key in progress."""
    if max < 1:
        raise ValueError("max must be 1 or more")
    table = _table(directory or default_directory(None), zone, "conn", CONN_RECORD, _size(size))
    return ConnLimit(Counter(table, max), key_function(key), _status(status))


def _zone(el: Element) -> str:
    """The zone's name: ``zone=``, else one made from where the element is (every worker
    reads the same file, so they agree on it)."""
    zone = el.get("zone")
    if zone is not None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", zone):
            raise el.error("zone must be 1 to 64 letters, digits, '-', '_' or '.', "
                           f"not {zone!r}")
        return zone
    return el.tag + "-" + hashlib.sha256(el.where.encode()).hexdigest()[:16]


_COMMON = [
    ocsi.AttributeDoc("key", "what requests are counted under: `ip` (the client address, after "
                      "accesscontrol's trusted forwarding), `header:NAME` (requests without it are "
                      "not counted) or `user` (the authenticated user, else the address)", "`ip`"),
    ocsi.AttributeDoc("status", "the status of a refusal (with Retry-After)", "`429`"),
    ocsi.AttributeDoc("zone", "the name of the table: elements with the same zone share their "
                      "counts; also keeps the counts over a reload that moves the element",
                      "one per element"),
    ocsi.AttributeDoc("size", "the most keys the table holds (its memory is fixed)", "`16384`"),
]


@ocsi.documents(ocsi.ElementDoc(
    "ratelimit", "limits the rate of requests per key (nginx's limit_req), for all the workers "
    "of the machine; place it before the content",
    attributes=[
        ocsi.AttributeDoc("rate", "requests per second or minute: `10r/s`, `30r/m`", required=True),
        ocsi.AttributeDoc("burst", "requests beyond the rate that are delayed instead of refused",
                          "`0`"),
        ocsi.AttributeDoc("nodelay", "true: serve the burst at once, without delaying it", "`false`"),
        ocsi.AttributeDoc("delay", "the first N requests of the burst are not delayed", "`0`"),
        ocsi.AttributeDoc("shared", "`machine`: counted for the workers of this machine; "
                          "`cluster`: for every server using ocsipersist-pgsql's database",
                          "`machine`"),
        *_COMMON,
    ]))
def parse_ratelimit(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["rate", "burst", "nodelay", "delay", "key", "status", "zone", "size",
                         "shared"])
    shared = el.get("shared", "machine")
    if shared not in ("machine", "cluster"):
        raise el.error(f'<ratelimit>: shared must be "machine" or "cluster", not {shared!r}')
    cluster = ctx.settings.cluster_database if shared == "cluster" else None
    if shared == "cluster" and not el.has("zone"):
        raise el.error('<ratelimit shared="cluster"> needs a zone, the same on every server',
                       hint='zone="login", for example')
    if shared == "cluster" and cluster is None:
        raise el.error('<ratelimit shared="cluster"> counts in the cluster\'s database, which '
                       'ocsipersist-pgsql publishes: declare it before this element',
                       hint=f'add <extension findlib-package="{PGSQL}"><database …/></extension>')
    rate = el.attr_value("rate", parse_rate, 0.0) if el.has("rate") else el.require("rate")
    try:
        step = ratelimit(
            rate=rate, burst=el.attr_value("burst", parse_int, 0),
            nodelay=el.attr_value("nodelay", parse_bool, False),
            delay=el.attr_value("delay", parse_int, 0), key=el.get("key") or "ip",
            status=el.attr_value("status", parse_int, 429), zone=_zone(el),
            size=el.attr_value("size", parse_int, DEFAULT_SIZE),
            directory=default_directory(ctx.settings.datadir), cluster=cluster)
    except ValueError as exc:
        raise el.error(f"<ratelimit>: {exc}") from None
    step.where = el.where
    return step


@ocsi.documents(ocsi.ElementDoc(
    "connlimit", "limits the requests in progress per key (nginx's limit_conn), for all the "
    "workers of the machine; a count is given back once the response has been sent",
    attributes=[
        ocsi.AttributeDoc("max", "requests of one key in progress at once", required=True),
        *_COMMON,
    ]))
def parse_connlimit(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["max", "key", "status", "zone", "size"])
    try:
        step = connlimit(
            max=el.attr_value("max", parse_int, 0) if el.has("max") else int(el.require("max")),
            key=el.get("key") or "ip", status=el.attr_value("status", parse_int, 429),
            zone=_zone(el), size=el.attr_value("size", parse_int, DEFAULT_SIZE),
            directory=default_directory(ctx.settings.datadir))
    except ValueError as exc:
        raise el.error(f"<connlimit>: {exc}") from None
    step.where = el.where
    return step


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"ratelimit": parse_ratelimit, "connlimit": parse_connlimit}


@ocsi.hookimpl
def ocsi_request_finished(request: ocsi.Request, status: int, sent: int, duration: float) -> None:
    release_counts(request)
