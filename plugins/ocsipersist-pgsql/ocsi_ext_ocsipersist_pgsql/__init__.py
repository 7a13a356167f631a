"""ocsipersist's PostgreSQL backend: Ocsigen's ``<database host port user password database
unix_domain_socket_dir size_conn_pool/>``, for several servers sharing one database.

Ocsigen's ``ocsigenserver.ext.ocsipersist-pgsql`` names this distribution.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import ocsi
import ocsi_ext_ocsipersist

from .store import CONNECT_TIMEOUT, PgsqlBackend, Where, check

ATTRIBUTES = ["host", "port", "user", "password", "database", "unix_domain_socket_dir",
              "size_conn_pool"]


def _count(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = ocsi.parse_int(text)
        if not low <= value <= high:
            raise ocsi.ValueFormatError(f"{text!r} is not between {low} and {high}")
        return value
    return parse


def parse_where(el: ocsi.Element) -> Where:
    el.check(attributes=ATTRIBUTES)
    return Where(
        host=el.get("host"), port=el.attr_value("port", _count(1, 65535), None),
        user=el.get("user"), password=el.get("password"),
        database=el.get("database") or "ocsipersist",
        unix_domain_socket_dir=el.get("unix_domain_socket_dir"),
        size_conn_pool=el.attr_value("size_conn_pool", _count(1, 1000), 16))


def reachable(where: Where) -> None:
    """Connect once, on a thread with its own loop (the configuration may be built inside
    the server's running loop); raise what the connection raised."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(check(where))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=run, name="ocsipersist-pgsql-check", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT + 2)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {CONNECT_TIMEOUT:g} s")
    if failure:
        raise failure[0]


def parse_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> PgsqlBackend:
    where = Where()
    place = ctx.where
    for el in options:
        if el.tag != "database":
            raise el.error(f"unknown option <{el.tag}>",
                           hint='<database host="…" port="…" user="…" password="…" database="…"/>')
        where, place = parse_where(el), el.where
    try:
        reachable(where)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's to fix
        raise ocsi.ConfigError(f"cannot reach the ocsipersist database {where.describe()}: "
                               f"{type(exc).__name__}: {exc}", where=place,
                               hint="check host, port, user, password and database, and that "
                                    "the PostgreSQL server is running") from None
    # the core's features that coordinate the servers of a cluster use this database too
    # (ACME's certificates): published through the public API, not read from our options
    ctx.publish_cluster_database(where.connect_args(), where.describe())
    return ocsi_ext_ocsipersist.claim_shared(where, lambda: PgsqlBackend(where), ctx)


def from_spec(spec: str) -> PgsqlBackend:
    """The backend for ``ocsi persist``: ``spec`` is ``key=value`` pairs of the ``<database>``
    attributes (``host=db port=5432 user=ocsi database=ocsipersist``)."""
    fields: dict[str, Any] = {}
    for part in spec.split():
        name, _, value = part.partition("=")
        if name not in ATTRIBUTES:
            raise SystemExit(f"ocsi persist: {name!r} is not one of {', '.join(ATTRIBUTES)}")
        fields[name] = int(value) if name in ("port", "size_conn_pool") else value
    return PgsqlBackend(Where(**fields))


@ocsi.hookimpl
@ocsi.documents(ocsi.ElementDoc(
    "database", "the PostgreSQL database holding every table (the table is created in it)",
    attributes=[ocsi.AttributeDoc("host", "the server", "the local socket"),
                ocsi.AttributeDoc("port", "its port", "`5432`"),
                ocsi.AttributeDoc("user", "the user name", "libpq's"),
                ocsi.AttributeDoc("password", "the password", "libpq's (PGPASSWORD, ~/.pgpass)"),
                ocsi.AttributeDoc("database", "the database, which must exist", "`ocsipersist`"),
                ocsi.AttributeDoc("unix_domain_socket_dir", "connect through the Unix socket in this directory",
                                  "none"),
                ocsi.AttributeDoc("size_conn_pool", "connections per server process (1–1000)", "`16`")]))
def ocsi_extension_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> PgsqlBackend:
    return parse_options(options, ctx)


__all__ = ["PgsqlBackend", "Where", "from_spec", "parse_options"]
