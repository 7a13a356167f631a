"""What element parsers and option parsers are given while a configuration is built.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._pipeline.scope import SiteConfig
from .errors import ConfigError
from .settings import ClusterDatabase, ServerSettings

if TYPE_CHECKING:
    from .._pipeline.engine import HostPattern
    from .._pipeline.step import Step
    from .xml import Element


def _new_states() -> Callable[[str], dict[str, Any]]:
    """A state table of its own, for contexts made outside a configuration build (tests)."""
    states: dict[str, dict[str, Any]] = {}
    return lambda name: states.setdefault(name, {})


@dataclass(slots=True)
class LoadContext:
    """Given to ``ocsi_extension_options``: the settings so far and where the options are."""

    settings: ServerSettings
    where: str
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("ocsi.config"))
    _state: Callable[[str], dict[str, Any]] = field(default_factory=_new_states)

    def state(self, extension: str) -> dict[str, Any]:
        """``extension``'s dictionary for the configuration being built (see
        :meth:`ocsi.ServerView.state` for the running one's)."""
        return self._state(extension)

    def publish_cluster_database(self, connect_args: Mapping[str, Any], description: str) -> None:
        """Offer the PostgreSQL database this extension was given, which every server of the
        cluster reaches, to what the core shares between servers (``settings.cluster_database``:
        ACME's certificates). ``connect_args``: keyword arguments of ``asyncpg.connect``. One
        extension per configuration may publish one."""
        known = self.settings.cluster_database
        if known is not None:
            raise ConfigError(f"a second database for the cluster ({description}); "
                              f"{known.description} was given at {known.where}", where=self.where)
        self.settings.cluster_database = ClusterDatabase(dict(connect_args), description, self.where)


@dataclass(slots=True)
class ParseContext:
    """Given to every element parser.

    ``config`` is the scope configuration of the enclosing host (or site) as written in the
    file; ``site_path`` the decoded segments of the enclosing sites; ``userconf`` the directory
    a user configuration file is confined to (``None`` for the main configuration), so a parser
    can refuse options a user must not set.
    """

    settings: ServerSettings
    config: SiteConfig
    site_path: tuple[str, ...]
    host_patterns: tuple[HostPattern, ...]
    _parse_steps: Callable[[Sequence[Element], ParseContext], list[Step]]
    _options: Mapping[str, Any]
    userconf: str | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("ocsi.config"))
    #: Files whose change should reload the configuration (``-w``), shared by the whole build.
    watched: list[str] = field(default_factory=list)
    _state: Callable[[str], dict[str, Any]] = field(default_factory=_new_states)

    def state(self, extension: str) -> dict[str, Any]:
        """``extension``'s dictionary for the configuration being built."""
        return self._state(extension)

    def watch(self, path: str) -> None:
        """Reload the configuration when ``path`` changes (with ``-w``): an application's
        source, a file an element reads. A directory means any file directly in it."""
        self.watched.append(path)

    def parse_steps(self, elements: Sequence[Element]) -> list[Step]:
        """Parse nested elements (the body of a container such as ``<then>``) into steps."""
        return self._parse_steps(elements, self)

    def for_user(self, directory: str, site_path: tuple[str, ...]) -> ParseContext:
        """The context of a user's configuration file (userconf): confined to ``directory``,
        for a site at ``site_path``. Parsers refuse there what a user must not set."""
        return ParseContext(self.settings, self.config, site_path, self.host_patterns,
                            self._parse_steps, self._options, directory, watched=self.watched,
                            _state=self._state)

    def options(self, extension: str) -> Any:
        """What ``ocsi_extension_options`` returned for ``extension`` (``None`` if nothing)."""
        return self._options.get(extension)
