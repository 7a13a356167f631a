"""What a storage backend provides: the calls behind :class:`~ocsi_ext_ocsipersist.Table`.

Values cross this interface as JSON text, so a backend stores strings and never needs to know
about Python objects. ``update`` is given a function of the stored JSON text (``None`` when
absent) returning the new JSON text; the backend runs it inside one transaction holding the row
(SQLite's write lock, PostgreSQL's ``SELECT … FOR UPDATE``), so concurrent updates, in other
processes or on other machines, are never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Backend(Protocol):
    #: ``sqlite``, ``pgsql``…: what ``ocsipersist:stats`` and errors call it.
    name: str

    def describe(self) -> str:
        """Where the data is (a file, a server), for logs and errors."""

    async def get(self, table: str, key: str) -> str | None: ...

    async def set(self, table: str, key: str, value: str) -> None: ...

    async def delete(self, table: str, key: str) -> None: ...

    async def update(self, table: str, key: str,
                     change: Callable[[str | None], str | None]) -> str | None:
        """Replace the value by ``change(old)`` atomically (``None``: delete); return it."""

    async def page(self, table: str, after: str | None, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` (key, value) pairs with keys after ``after``, in key order."""

    async def length(self, table: str) -> int: ...

    async def clear(self, table: str) -> None: ...

    async def tables(self) -> dict[str, int]:
        """Every table with its number of rows."""

    async def size(self) -> int | None:
        """Bytes the data takes, when the backend knows."""

    async def close(self) -> None: ...
