"""An ordered, case-insensitive header list.

Names are stored lower-cased (HTTP field names are case-insensitive and h11 hands them to us
lower-cased already), values as ``str`` decoded from latin-1 so that any byte survives the round
trip. Order and repetition are kept because they matter on the wire (``Set-Cookie``, ``Vary``).

Private: not part of the extension API.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Headers:
    """A list of ``(name, value)`` pairs with dictionary-like helpers."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(n.lower(), v) for n, v in items]

    @classmethod
    def from_lower(cls, items: list[tuple[str, str]]) -> Headers:
        """Wrap ``items`` whose names are already lower-case (no copy, no re-lowering)."""
        h = cls.__new__(cls)
        h._items = items
        return h

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Build from h11's ``(lower-cased name, value)`` byte pairs without re-lowering."""
        h = cls.__new__(cls)
        h._items = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        return h

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for n, v in self._items:
            if n == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self._items if n == name]

    def get_list(self, name: str) -> list[str]:
        """Values of a comma-separated list header, across repeated lines, trimmed."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(part.strip() for part in value.split(",") if part.strip())
        return out

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        name = name.lower()
        return any(n == name for n, _ in self._items)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self.remove(name)

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` by one, keeping the position of the first."""
        name = name.lower()
        for i, (n, _) in enumerate(self._items):
            if n == name:
                self._items[i] = (name, value)
                self._items[i + 1 :] = [(a, b) for a, b in self._items[i + 1 :] if a != name]
                return
        self._items.append((name, value))

    def setdefault(self, name: str, value: str) -> str:
        current = self.get(name)
        if current is None:
            self._items.append((name.lower(), value))
            return value
        return current

    def add(self, name: str, value: str) -> None:
        self._items.append((name.lower(), value))

    def remove(self, name: str) -> None:
        name = name.lower()
        self._items = [(n, v) for n, v in self._items if n != name]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> Headers:
        h = Headers.__new__(Headers)
        h._items = list(self._items)
        return h

    def raw(self) -> list[tuple[bytes, bytes]]:
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in self._items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def has_token(headers: Headers, name: str, token: str) -> bool:
    """Whether a comma-list header (``Connection``, ``Vary``…) carries ``token``, any case."""
    token = token.lower()
    return any(t.lower() == token for t in headers.get_list(name))
