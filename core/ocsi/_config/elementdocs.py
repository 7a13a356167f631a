"""What an extension's configuration elements mean, declared beside their parsers.

An element parser (or an ``ocsi_extension_options`` implementation) carries the description of
the elements it reads: ``@ocsi.documents(ocsi.ElementDoc("static", "…", attributes=[…]))``.
``ocsi extensions`` prints it and ``python -m ocsi.docs`` writes it into
docs/configuration.md, so the reference and the code are one declaration; a test compares
the attributes declared with those the parser's ``el.check(attributes=…)`` accepts.

Private: not part of the extension API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Where :func:`documents` keeps the declarations on the function it decorates.
_ATTRIBUTE = "__ocsi_element_docs__"


@dataclass(frozen=True, slots=True)
class AttributeDoc:
    """One attribute: ``default`` is what its absence means (``None``: nothing to say)."""

    name: str
    meaning: str
    default: str | None = None
    required: bool = False


@dataclass(frozen=True, slots=True)
class ElementDoc:
    """One element: what it does, its attributes, the elements it holds, its text."""

    tag: str
    summary: str
    attributes: Sequence[AttributeDoc] = ()
    children: Sequence[ElementDoc] = ()
    #: What the text content is, for an element that takes text (``None``: no text).
    text: str | None = None

    def __post_init__(self) -> None:
        # lists are accepted where tuples are declared: the declarations read better with them
        object.__setattr__(self, "attributes", tuple(self.attributes))
        object.__setattr__(self, "children", tuple(self.children))

    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def walk(self, parents: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], ElementDoc]]:
        """This element and every nested one, each with the tags above it."""
        yield parents, self
        for child in self.children:
            yield from child.walk(parents + (self.tag,))


def documents(*docs: ElementDoc) -> Callable[[F], F]:
    """Attach element descriptions to a parser (or an options hook); returns it unchanged."""

    def mark(fn: F) -> F:
        setattr(fn, _ATTRIBUTE, getattr(fn, _ATTRIBUTE, ()) + docs)
        return fn

    return mark


def documented(fn: object) -> tuple[ElementDoc, ...]:
    """The descriptions attached to ``fn`` with :func:`documents` (empty when none)."""
    docs = getattr(fn, _ATTRIBUTE, ())
    return tuple(d for d in docs if isinstance(d, ElementDoc))
