"""Reading configuration XML safely, with every element located in its file.

The parser resolves no entities, loads no DTD and never touches the network. :class:`Element`
wraps an lxml element with the helpers every element parser needs: attribute access and
validation, text values, and located errors (``file:line:column``).

Private: not part of the extension API.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from lxml import etree

from .errors import ConfigError, XMLSyntaxError
from .values import ValueFormatError

T = TypeVar("T")

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    remove_comments=True, remove_pis=True, huge_tree=False,
)


#: Documents nobody wrote (a one-line command's): name → {line: what the user typed}.
_GENERATED: dict[str, dict[int, str]] = {}


def describe_lines(name: str, origins: dict[int, str]) -> None:
    """Locate the elements of the generated document ``name`` by what produced each line:
    an element on a line of ``origins`` is "at" that text (``--port 8080``), any other at
    ``name`` alone, never at a line of a document the user has not seen."""
    _GENERATED[name] = dict(origins)


@functools.lru_cache(maxsize=64)
def _lines(path: str, mtime: float) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def _column(path: str | None, line: int | None, tag: str) -> int | None:
    """lxml records no column for elements: find ``<tag`` on its line (1-based)."""
    if not path or not line:
        return None
    try:
        lines = _lines(path, os.stat(path).st_mtime)
    except OSError:
        return None
    if line - 1 >= len(lines):
        return None
    col = lines[line - 1].find("<" + tag)
    return col + 1 if col >= 0 else None


def parse_file(path: str) -> Element:
    """Parse ``path`` and return its root element; syntax errors are located."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file: {exc.strerror}", where=path) from None
    return parse_bytes(data, path)


def parse_bytes(data: bytes, path: str = "<string>") -> Element:
    try:
        root = etree.fromstring(data, parser=_PARSER, base_url=path)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        msg = exc.msg or str(exc)
        if msg.startswith("(null)"):  # libxml2 gave no text: the next logged error says it
            msg = next((e.message for e in exc.error_log if e.message and "(null)" not in e.message),
                       "the document is cut or malformed here")
        # lxml appends "(line N, column M)"; the location is given in front instead.
        msg = msg.rsplit(", line ", 1)[0]
        raise XMLSyntaxError(f"XML syntax error: {msg}", where=f"{path}:{line}:{col}",
                             hint="the file must be well-formed XML") from None
    return Element(root, path)


class Element:
    """A configuration element with its location."""

    __slots__ = ("_el", "file", "line", "_known_attrs")

    def __init__(self, el: etree._Element, file: str) -> None:
        self._el = el
        self.file = file
        self.line: int | None = el.sourceline
        self._known_attrs: set[str] | None = None

    # -- identity and location -------------------------------------------------------------------
    @property
    def tag(self) -> str:
        return str(self._el.tag)

    @property
    def where(self) -> str:
        generated = _GENERATED.get(self.file)
        if generated is not None:
            return generated.get(self.line or 0, self.file)
        col = _column(self.file, self.line, self.tag)
        out = f"{self.file}:{self.line or '?'}"
        return out + (f":{col}" if col else "")

    def describe(self) -> str:
        """``<site path="a">``-style rendering used in messages."""
        attrs = "".join(f' {k}="{v}"' for k, v in self._el.attrib.items())
        return f"<{self.tag}{attrs}>"

    def error(self, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, where=self.where, hint=hint)

    # -- children and text -----------------------------------------------------------------------
    @property
    def children(self) -> list[Element]:
        return [Element(c, self.file) for c in self._el if isinstance(c.tag, str)]

    def __iter__(self) -> Iterator[Element]:
        return iter(self.children)

    @property
    def text(self) -> str:
        """Concatenated text content; an element child is an error (a string was expected)."""
        if self.children:
            raise self.error(f"<{self.tag}> expects text, not elements")
        return self._el.text or ""

    def value(self, convert: Callable[[str], T]) -> T:
        """The text converted, with a located error naming the element on failure."""
        try:
            return convert(self.text)
        except ValueFormatError as exc:
            raise self.error(f"in <{self.tag}>: {exc}") from None

    # -- attributes ------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, str]:
        return dict(self._el.attrib)

    def has(self, name: str) -> bool:
        return name in self._el.attrib

    def get(self, name: str, default: str | None = None) -> str | None:
        value: str | None = self._el.attrib.get(name, default)  # lxml is untyped
        return value

    def require(self, name: str, hint: str | None = None) -> str:
        value: str | None = self._el.attrib.get(name)
        if value is None:
            raise self.error(f"missing attribute '{name}' in <{self.tag}>", hint)
        return value

    def attr_value(self, name: str, convert: Callable[[str], T], default: T) -> T:
        raw = self._el.attrib.get(name)
        if raw is None:
            return default
        try:
            return convert(raw)
        except ValueFormatError as exc:
            raise self.error(f"attribute '{name}' of <{self.tag}>: {exc}") from None

    def check(self, attributes: Iterable[str] = (), children: Iterable[str] | None = (),
              text: bool = False) -> None:
        """Reject attributes (and child elements, and non-blank text) not listed.

        ``children=None`` leaves children to the caller.
        """
        allowed = set(attributes)
        for name in self._el.attrib:
            if name not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise self.error(f"unknown attribute '{name}' in <{self.tag}>",
                                 hint=f"known attributes here: {known}")
        if children is not None:
            kids = set(children)
            for child in self.children:
                if child.tag not in kids:
                    raise unknown_element(child, self, kids)
        if not text:
            if (self._el.text or "").strip():
                raise self.error(f"<{self.tag}> takes no text content")
            for c in self._el:
                if (c.tail or "").strip():
                    raise self.error(f"unexpected text inside <{self.tag}>")


def unknown_element(child: Element, parent: Element | str, known: Iterable[str]) -> ConfigError:
    where = parent.describe() if isinstance(parent, Element) else parent
    names = ", ".join(sorted(known)) or "none"
    return child.error(f"unknown element <{child.tag}> in {where}", hint=f"known here: {names}")
