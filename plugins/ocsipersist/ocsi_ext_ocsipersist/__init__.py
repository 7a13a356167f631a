"""ocsipersist: persistent data for sites and applications, as Ocsigen's Ocsipersist.

This distribution is the API (:func:`table`, :func:`ref`) and the ``ocsipersist:stats``
command. The data lives in the backend the configuration names: ``ocsi-ext-ocsipersist-sqlite``
(one file) or ``ocsi-ext-ocsipersist-pgsql`` (a PostgreSQL server shared by many ocsi servers).
"""

from __future__ import annotations

from typing import Any

import ocsi
from ocsi import ServerView

from . import selection
from .backend import Backend
from .selection import NoBackend, claim, claim_shared, current
from .tables import Ref, Table, ref, table


@ocsi.hookimpl
def ocsi_server_started(server: ServerView) -> None:
    selection.went_live(server.state(selection.STATE))


@ocsi.hookimpl
def ocsi_reloaded(server: ServerView, ok: bool, error: BaseException | None) -> None:
    if ok:
        selection.went_live(server.state(selection.STATE))


@ocsi.hookimpl
def ocsi_server_stopping(server: ServerView) -> None:
    selection.stopped()


async def stats(args: list[str]) -> str:
    """``ocsipersist:stats``: the backend, every table with its rows, the size."""
    backend = current()
    tables = await backend.tables()
    size = await backend.size()
    listed = ", ".join(f"{name} {rows}" for name, rows in sorted(tables.items())) or "no tables"
    return (f"ocsipersist {backend.name} ({backend.describe()}): {listed}"
            + ("" if size is None else f"; {size} bytes"))


@ocsi.hookimpl
def ocsi_commands() -> dict[str, Any]:
    return {"stats": stats}


__all__ = ["Backend", "NoBackend", "Ref", "Table", "claim", "claim_shared", "current", "ref",
           "table"]
