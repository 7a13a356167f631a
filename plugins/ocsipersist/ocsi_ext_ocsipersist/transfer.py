"""``ocsi persist export|import``: a store's data as JSON lines, to move it between backends.

    ocsi persist export sqlite /var/lib/ocsi/ocsidb > data.jsonl
    ocsi persist import pgsql 'host=db user=ocsi dbname=ocsipersist' < data.jsonl

One line per row, ``{"table": …, "key": …, "value": …}``. Both directions stream: a table is
read a page at a time and the input a line at a time, so any size fits in memory. Backends are
found by the entry-point group ``ocsipersist.backends`` (``name = module:from_spec``), so a
third-party backend takes part without changes here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import IO

from .backend import Backend
from .tables import PAGE


def _backend(name: str, spec: str) -> Backend:
    from importlib.metadata import entry_points

    for ep in entry_points(group="ocsipersist.backends"):
        if ep.name == name:
            backend: Backend = ep.load()(spec)
            return backend
    known = sorted(ep.name for ep in entry_points(group="ocsipersist.backends"))
    raise SystemExit(f"ocsi persist: no backend {name!r} installed (installed: "
                     f"{', '.join(known) or 'none'})")


async def export(backend: Backend, out: IO[str]) -> int:
    rows = 0
    for name in sorted(await backend.tables()):
        after: str | None = None
        while True:
            page = await backend.page(name, after, PAGE)
            for key, raw in page:
                out.write(json.dumps({"table": name, "key": key, "value": json.loads(raw)},
                                     ensure_ascii=False) + "\n")
            rows += len(page)
            if len(page) < PAGE:
                break
            after = page[-1][0]
    return rows


async def import_(backend: Backend, lines: IO[str]) -> int:
    rows = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            table, key, value = row["table"], row["key"], row["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"ocsi persist import: line {number}: not a row ({exc})") from None
        await backend.set(str(table), str(key), json.dumps(value, separators=(",", ":"),
                                                              ensure_ascii=False))
        rows += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    """export|import: ocsipersist data as JSON lines."""
    p = argparse.ArgumentParser(prog="ocsi persist",
                                description="Export or import ocsipersist data as JSON lines.")
    p.add_argument("action", choices=["export", "import"])
    p.add_argument("backend", help="sqlite, pgsql… (an installed backend)")
    p.add_argument("spec", help="where the data is: a file for sqlite, a connection string for pgsql")
    args = p.parse_args(argv)
    backend = _backend(args.backend, args.spec)

    async def go() -> int:
        try:
            if args.action == "export":
                return await export(backend, sys.stdout)
            return await import_(backend, sys.stdin)
        finally:
            await backend.close()

    rows = asyncio.run(go())
    print(f"ocsi persist {args.action}: {rows} rows", file=sys.stderr)
    return 0
