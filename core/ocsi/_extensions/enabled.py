"""The extensions one configuration enables, and every hook call made on exactly those.

A server has one plugin manager for its whole life: every extension any configuration ever
named stays registered in it (a reload that drops an extension does not un-import it). What a
configuration may call is the subset it names. :class:`EnabledExtensions` owns that subset (the
names, dependencies first), the options each extension parsed from its ``<extension>``
element and the ``tag → parser`` table, and hands out hook callers built on pluggy's
``subset_hook_caller`` (``firstresult`` hooks answer as pluggy says), so nothing else in the
server filters hook implementations.

The subset is computed when a hook is called, not when the object is built: a later build may
register extensions this configuration never named, and they must stay out of its calls. Two
exception, here: :meth:`EnabledExtensions.functions` takes the per-request hook's list once per
configuration (see there why it is not a subset caller). A hook addressed to one extension (its
options, its pipe commands, its elements) goes through a subset caller leaving every other
plugin out (:meth:`EnabledExtensions.addressed`).

Private: not part of the extension API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from .._config.errors import ConfigError

if TYPE_CHECKING:
    from .._config.context import ParseContext
    from .._config.xml import Element
    from .._pipeline.step import Step

#: ``parser(element, ctx) -> Step`` for one element name.
ElementParser = Callable[["Element", "ParseContext"], "Step"]

#: Element names no extension may claim (the core parses them).
CORE_ELEMENTS = frozenset({"site"})


def single(results: list[Any]) -> Any:
    """What the one implementation an :meth:`EnabledExtensions.addressed` caller reached
    returned (pluggy leaves ``None`` out of its list)."""
    return results[0] if results else None


class _SubsetRelay:
    """``enabled.hook.ocsi_X(...)``: like ``pm.hook`` but limited to the enabled extensions."""

    __slots__ = ("_owner",)

    def __init__(self, owner: EnabledExtensions) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return self._owner.caller(name)


class EnabledExtensions:
    """Which extensions a configuration enables; hook calls, options and element parsers."""

    def __init__(self, pm: pluggy.PluginManager, names: Iterable[str] = ()) -> None:
        self.pm = pm
        self._names: list[str] = []
        self._set: set[str] = set()
        #: What ``ocsi_extension_options`` returned, by extension name.
        self.options: dict[str, Any] = {}
        #: Each extension's state for this configuration (:meth:`state`).
        self.states: dict[str, dict[str, Any]] = {}
        self._parsers: dict[str, tuple[str, ElementParser]] | None = None
        self.hook = _SubsetRelay(self)
        for name in names:
            self.enable(name)

    # -- the set ---------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Enabled extension names, in the order they were enabled (dependencies first)."""
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._set

    def __iter__(self) -> Any:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __eq__(self, other: object) -> bool:  # a list of names compares with the names
        if isinstance(other, EnabledExtensions):
            return self._names == other._names
        if isinstance(other, list):
            return self._names == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable: equal to a list of names

    def __repr__(self) -> str:
        return f"EnabledExtensions({self._names!r})"

    def enable(self, name: str) -> bool:
        """Add ``name`` (already registered in the manager); False when it was enabled before."""
        if name in self._set:
            return False
        self._names.append(name)
        self._set.add(name)
        self._parsers = None
        return True

    def state(self, extension: str) -> dict[str, Any]:
        """``extension``'s own dictionary for this configuration: made when first asked for
        while the configuration is built, dropped with the configuration when it is retired.
        What an extension keeps per configuration (a backend it chose, a table it filled) goes
        here rather than in module globals that every configuration would share."""
        state = self.states.get(extension)
        if state is None:
            state = self.states[extension] = {}
        return state

    def plugin_replaced(self) -> None:
        """A module was registered anew (a ``<library>`` re-imported): parse with the new one."""
        self._parsers = None

    # -- hook calls --------------------------------------------------------------------------------
    def caller(self, hook_name: str) -> Any:
        """A hook caller for ``hook_name`` that calls the enabled extensions only."""
        others = [plugin for name, plugin in self.pm.list_name_plugin()
                  if name not in self._set]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=others)

    def functions(self, hook_name: str) -> list[Callable[..., Any]]:
        """The enabled implementations of ``hook_name``, in pluggy's calling order.

        For the hooks called per request (``ocsi_request_finished``): the list is taken once
        per configuration and its functions called directly, each in its own ``try`` (one
        failing observer does not silence the others). Not a pluggy caller, for two reasons:
        a subset caller filters every registered implementation on each call and checks the
        arguments against the specification, which measured 222,000 instead of 205,000
        instructions per request with one observer (``bench/icount.py --rows observed``,
        callgrind; the static row without one: 203,500); and it leaves out the plugins
        known when it was made, so one kept for a configuration's life would also reach an
        extension a later build registers.
        """
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        return [i.function for i in reversed(impls) if i.plugin_name in self._set]

    def addressed(self, hook_name: str, extension: str) -> pluggy.HookCaller | None:
        """A caller of ``hook_name`` that reaches ``extension`` alone, or ``None`` when it is not
        enabled or does not implement the hook: pluggy's ``subset_hook_caller`` without every
        other registered plugin. For the hooks addressed to one extension (its options, its
        pipe commands, its elements). Call it at once: a plugin registered after it was made
        would not be left out. Its answer is a list, empty when the implementation returned
        ``None`` (:func:`single`)."""
        if extension not in self._set:
            return None
        others = [plugin for name, plugin in self.pm.list_name_plugin() if name != extension]
        caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
        return caller if caller.get_hookimpls() else None

    # -- elements ----------------------------------------------------------------------------------
    def element_parsers(self, where: str = "?") -> Mapping[str, tuple[str, ElementParser]]:
        """``{tag: (extension, parser)}`` over the enabled extensions.

        A tag claimed twice (or one the core owns) is a configuration error naming both
        claimants, located at ``where``.
        """
        if self._parsers is None:
            table: dict[str, tuple[str, ElementParser]] = {}
            for name in self._names:
                caller = self.addressed("ocsi_elements", name)
                if caller is None:
                    continue
                elements: Mapping[str, ElementParser] = single(caller()) or {}
                for tag, parser in elements.items():
                    if tag in table or tag in CORE_ELEMENTS:
                        other = table[tag][0] if tag in table else "the core"
                        raise ConfigError(f"element <{tag}> is claimed by both {other} and {name}",
                                          where=where, hint="load only one of these extensions")
                    table[tag] = (name, parser)
            self._parsers = table
        return self._parsers
