"""Element parsers called directly: an element from XML text, the context a parser is given.

For unit tests of one parser (its attributes, its errors): ``parse_element`` reads the text
as the configuration reader does (locations included), ``parse_context`` is what the builder
hands a parser inside a ``<host>``, ``load_context`` what an ``ocsi_extension_options`` gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._config.context import LoadContext, ParseContext
    from .._config.settings import ServerSettings
    from .._config.xml import Element
    from .._pipeline.scope import SiteConfig
    from .._pipeline.step import Step

__all__ = ["load_context", "parse_context", "parse_element"]


def parse_element(xml: str, path: str = "test.conf") -> Element:
    """The root element of ``xml``; errors and ``where`` name ``path:line``."""
    from .._config.xml import parse_bytes

    return parse_bytes(xml.encode(), path)


def parse_context(*, config: SiteConfig | None = None, site_path: Sequence[str] = (),
                  userconf: str | None = None, options: Mapping[str, Any] | None = None,
                  settings: ServerSettings | None = None,
                  parse_steps: Callable[[Sequence[Element]], list[Step]] | None = None
                  ) -> ParseContext:
    """A parser's context: ``userconf`` set as for a user's file, ``options`` by extension
    name, ``parse_steps`` for containers (default: children parse to no step)."""
    from .._config.context import ParseContext
    from .._config.settings import ServerSettings
    from .._pipeline.scope import SiteConfig

    nested = parse_steps or (lambda elements: [])
    return ParseContext(settings or ServerSettings(), config or SiteConfig(), tuple(site_path), (),
                        lambda elements, ctx: nested(elements), dict(options or {}), userconf)


def load_context(where: str = "test.conf:1", settings: ServerSettings | None = None) -> LoadContext:
    """What ``ocsi_extension_options`` is given."""
    from .._config.context import LoadContext
    from .._config.settings import ServerSettings

    return LoadContext(settings or ServerSettings(), where)
