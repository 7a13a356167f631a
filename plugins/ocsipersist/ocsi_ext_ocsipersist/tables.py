"""The API site code and applications use: named tables of JSON values, and references.

``table("counters")`` and ``ref("hello", default=0)`` may be called at import time, before
any configuration is loaded: the backend is looked up at each call, so the same objects keep
working across reloads and serve whatever store the running configuration names.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import ocsi

from .selection import current

if TYPE_CHECKING:
    from .backend import Backend

T = TypeVar("T")

#: Rows fetched per round trip when iterating a table: memory stays bounded for any size.
PAGE = 500
#: Where references live: one row per reference.
REFS = "ocsipersist.refs"


#: Calls to the backend and those that raised, by operation (ocsi-ext-metrics).
OPERATIONS = ("get", "set", "delete", "update", "page", "length", "clear")
_CALLS = ocsi.STATS.counter("ocsi_persist_calls_total", "ocsipersist's calls to its backend, "
                            "by operation", ("operation",))
_ERRORS = ocsi.STATS.counter("ocsi_persist_errors_total", "ocsipersist's calls that failed, "
                             "by operation", ("operation",))
_COUNTS = {op: (_CALLS.labels(op), _ERRORS.labels(op)) for op in OPERATIONS}


async def _call(op: str, call: Callable[[Backend], Awaitable[T]]) -> T:
    """``call(backend)``, counted."""
    calls, errors = _COUNTS[op]
    calls.value += 1
    try:
        return await call(current())
    except Exception:
        errors.value += 1
        raise


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"an ocsipersist {kind} name is a non-empty string, not {name!r}")
    return name


class Table:
    """A persistent table: string keys, JSON values (Ocsipersist's ``Functorial``/``Polymorphic``
    tables). Every call is a coroutine and none blocks the event loop."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = _check_name("table", name)

    async def get(self, key: str, default: Any = None) -> Any:
        raw = await _call("get", lambda b: b.get(self.name, key))
        return default if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any) -> None:
        text = _dump(value)
        await _call("set", lambda b: b.set(self.name, key, text))

    async def delete(self, key: str) -> None:
        await _call("delete", lambda b: b.delete(self.name, key))

    async def update(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Store ``change(old)`` (``old`` is ``default`` when absent) and return it, atomically:
        no concurrent update, from any process or server, is lost. ``change`` is a plain
        function; it may run more than once if the database asks for a retry."""

        def on_text(raw: str | None) -> str:
            return _dump(change(default if raw is None else json.loads(raw)))

        raw = await _call("update", lambda b: b.update(self.name, key, on_text))
        return None if raw is None else json.loads(raw)

    async def items(self) -> AsyncIterator[tuple[str, Any]]:
        """(key, value) pairs in key order, fetched a page at a time."""
        after: str | None = None
        while True:
            start = after
            rows = await _call("page", lambda b: b.page(self.name, start, PAGE))
            for key, raw in rows:
                yield key, json.loads(raw)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    async def keys(self) -> AsyncIterator[str]:
        async for key, _ in self.items():
            yield key

    async def length(self) -> int:
        return await _call("length", lambda b: b.length(self.name))

    async def clear(self) -> None:
        await _call("clear", lambda b: b.clear(self.name))

    def __repr__(self) -> str:
        return f"<ocsipersist table {self.name!r}>"


class Ref:
    """One persistent value with a default (Ocsipersist's ``Ref``)."""

    __slots__ = ("name", "default")

    def __init__(self, name: str, default: Any = None) -> None:
        self.name = _check_name("reference", name)
        self.default = default

    async def get(self) -> Any:
        return await Table(REFS).get(self.name, self.default)

    async def set(self, value: Any) -> None:
        await Table(REFS).set(self.name, value)

    async def update(self, change: Callable[[Any], Any]) -> Any:
        return await Table(REFS).update(self.name, change, self.default)

    def __repr__(self) -> str:
        return f"<ocsipersist ref {self.name!r}>"


def table(name: str) -> Table:
    return Table(name)


def ref(name: str, default: Any = None) -> Ref:
    return Ref(name, default)
