"""ocsipersist's SQLite backend: ``<database file="…"/>``, by default ``ocsidb`` in ``<datadir>``.

Ocsigen's ``ocsigenserver.ext.ocsipersist-sqlite`` names this distribution.
"""

from __future__ import annotations

import os
import sqlite3

import ocsi
import ocsi_ext_ocsipersist

from .store import SQLiteBackend, open_database



def parse_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> SQLiteBackend:
    path: str | None = None
    for el in options:
        if el.tag != "database":
            raise el.error(f"unknown option <{el.tag}>", hint='<database file="…"/>')
        el.check(attributes=["file"])
        path = el.require("file", hint='e.g. <database file="/var/lib/ocsi/ocsidb"/>')
    if path is None:
        if ctx.settings.datadir is None:
            raise ocsi.ConfigError("ocsipersist-sqlite needs a file: no <datadir> and no "
                                   "<database file>", where=ctx.where,
                                   hint='add <datadir>DIR</datadir> to <server>, or '
                                        '<database file="…"/> inside this <extension>')
        path = os.path.join(ctx.settings.datadir, "ocsidb")
    path = os.path.abspath(path)
    try:
        open_database(path).close()  # the file can be made and written: say so now, located
    except sqlite3.Error as exc:
        raise ocsi.ConfigError(f"cannot open the ocsipersist database {path}: {exc}",
                               where=ctx.where, hint="its directory must exist and be "
                               "writable by the server's user") from None
    return ocsi_ext_ocsipersist.claim_shared(path, lambda: SQLiteBackend(path), ctx)


def from_spec(spec: str) -> SQLiteBackend:
    """The backend for ``ocsi persist``: ``spec`` is the database file."""
    path = os.path.abspath(spec)
    open_database(path).close()
    return SQLiteBackend(path)


@ocsi.hookimpl
@ocsi.documents(ocsi.ElementDoc(
    "database", "the SQLite file holding every table, created when absent",
    attributes=[ocsi.AttributeDoc("file", "its path (the directory must exist and be writable)",
                                  "`ocsidb` in <datadir>")]))
def ocsi_extension_options(options: list[ocsi.Element], ctx: ocsi.LoadContext) -> SQLiteBackend:
    return parse_options(options, ctx)


__all__ = ["SQLiteBackend", "from_spec", "parse_options"]
