"""Finding extensions by distribution name and loading them into a plugin manager.

The analogue of Ocsigen's ``findlib-package``: a configuration names an installed
distribution; its entry point in the group ``ocsi.extensions`` gives the module to register.
Distributions it requires that are themselves extensions load first, each once, in dependency
order. Ocsigen's names (``ocsigenserver.ext.staticmod``, ``name="staticmod"``,
``module="staticmod.cmxs"``) map to ``ocsi-ext-staticmod`` so that existing configurations load.

Private: not part of the extension API.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# the backport (a dependency) follows the newest metadata behaviour on every Python
import importlib_metadata as metadata

from .. import hookspecs
from .._config.errors import ExtensionLoadError, ExtensionNotFound

GROUP = "ocsi.extensions"
OCSIGEN_PREFIX = "ocsigenserver.ext."
log = logging.getLogger("ocsi.extensions")


def normalize(name: str) -> str:
    """PEP 503 normalisation: case and ``-_.`` runs do not matter."""
    return str(canonicalize_name(name))


def distribution_name(package: str | None = None, name: str | None = None,
                      module: str | None = None) -> str:
    """Map the three ways Ocsigen names an extension to a distribution name."""
    if package is not None:
        if package.startswith(OCSIGEN_PREFIX):
            return "ocsi-ext-" + normalize(package[len(OCSIGEN_PREFIX):])
        return normalize(package)
    if name is not None:
        return "ocsi-ext-" + normalize(name)
    if module is not None:
        base = module.rsplit("/", 1)[-1]
        for suffix in (".cmxs", ".cma", ".cmo"):
            if base.endswith(suffix):
                return "ocsi-ext-" + normalize(base[: -len(suffix)])
    raise ValueError("no extension name given")


@dataclass(slots=True)
class ExtensionInfo:
    """What ``ocsi extensions`` shows and what loading needs."""

    name: str
    version: str
    entry_point: Any
    dependencies: list[str] = field(default_factory=list)
    summary: str = ""
    #: The extras each dependency is required with (``ocsi-ext-x[y]``).
    dependency_extras: dict[str, frozenset[str]] = field(default_factory=dict)


class Catalog:
    """The installed extension distributions, seen from ``sys.path`` plus extra directories."""

    def __init__(self, extra_paths: Sequence[str] = ()) -> None:
        self.extra_paths = list(extra_paths)
        self._dists: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._dists is None:
            found: dict[str, Any] = {}
            for dist in metadata.distributions(path=self.extra_paths + sys.path):
                dname = dist.metadata["Name"]
                if dname and normalize(dname) not in found:
                    found[normalize(dname)] = dist
            self._dists = found
        return self._dists

    def info(self, name: str, extras: Iterable[str] = ()) -> ExtensionInfo | None:
        """What loading ``name`` needs; ``None`` when it is not an installed extension.

        Its dependencies are the requirements, read with ``packaging``, that apply here
        (environment markers evaluated, those of an extra only when the extra is asked for)
        and that are extensions: installed as one, or named like one (so that a missing
        extension dependency is reported, not skipped). A distribution with two entry points
        in ``ocsi.extensions`` is an error: which module to load would be a guess.
        """
        dist = self._all().get(normalize(name))
        if dist is None:
            return None
        eps = self._entry_points(dist)
        if not eps:
            return None
        if len(eps) > 1:
            raise ExtensionLoadError(
                f"distribution '{normalize(name)}' has {len(eps)} entry points in the group "
                f"'{GROUP}' ({', '.join(sorted(ep.name for ep in eps))})",
                hint="an extension distribution declares exactly one")
        wanted = {""} | {normalize(e) for e in extras}
        deps: list[tuple[str, frozenset[str]]] = []
        for text in dist.requires or ():
            try:
                req = Requirement(text)
            except InvalidRequirement as exc:
                log.warning("%s: ignoring the unreadable requirement %r: %s", name, text, exc)
                continue
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in wanted):
                continue
            dep = normalize(req.name)
            if self.is_extension(dep) or dep.startswith("ocsi-ext-"):
                deps.append((dep, frozenset(req.extras)))
        return ExtensionInfo(normalize(name), dist.version, eps[0], [d for d, _ in deps],
                             dist.metadata.get("Summary", "") or "", dict(deps))

    @staticmethod
    def _entry_points(dist: Any) -> list[Any]:
        return [ep for ep in dist.entry_points if ep.group == GROUP]

    def distribution(self, name: str) -> Any:
        """The installed distribution called ``name`` (``None`` if there is none)."""
        return self._all().get(normalize(name))

    def is_extension(self, name: str) -> bool:
        dist = self._all().get(normalize(name))
        return dist is not None and bool(self._entry_points(dist))

    def exists(self, name: str) -> bool:
        return normalize(name) in self._all()

    def extensions(self) -> list[ExtensionInfo]:
        out = []
        for name in sorted(self._all()):
            try:
                info = self.info(name)
            except ExtensionLoadError as exc:
                log.warning("%s", exc)
                continue
            if info is not None:
                out.append(info)
        return out

    def _missing_hint(self, name: str) -> str:
        """A misspelt name gets the closest installed extension, not an invitation to install
        the typo; a name close to nothing gets how to install or find it."""
        def short(n: str) -> str:  # the shared ocsi-ext- prefix would make any two look alike
            return n.removeprefix("ocsi-ext-")

        installed = {short(n): n for n, d in self._all().items() if self._entry_points(d)}
        close = difflib.get_close_matches(short(name), sorted(installed), n=1, cutoff=0.75)
        if close:
            return f"did you mean {installed[close[0]]}? (installed)"
        return f"pip install {name}, or add <findlib path=\"DIR\"/> pointing where it is"

    def load_order(self, name: str) -> list[ExtensionInfo]:
        """``name`` and the extensions it depends on, dependencies first, each once.

        A missing distribution or a dependency cycle raises, naming the distributions involved.
        """
        order: list[ExtensionInfo] = []
        done: set[str] = set()

        def visit(n: str, chain: tuple[str, ...], extras: frozenset[str]) -> None:
            if n in done:
                return
            if n in chain:
                cycle = " -> ".join(chain[chain.index(n):] + (n,))
                raise ExtensionLoadError(f"extension dependency cycle: {cycle}")
            info = self.info(n, extras)
            if info is None:
                needed = f" (required by {chain[-1]})" if chain else ""
                what = ("is installed but is not an ocsi extension (no 'ocsi.extensions' entry point)"
                        if self.exists(n) else "is not installed")
                raise ExtensionNotFound(f"extension distribution '{n}'{needed} {what}",
                                        hint=self._missing_hint(n))
            for dep in info.dependencies:
                visit(dep, chain + (n,), info.dependency_extras.get(dep, frozenset()))
            done.add(n)
            order.append(info)

        visit(normalize(name), (), frozenset())
        return order


def new_plugin_manager() -> pluggy.PluginManager:
    """A fresh manager with ocsi's hook specifications (one per server, never global)."""
    pm = pluggy.PluginManager("ocsi")
    pm.add_hookspecs(hookspecs)
    return pm


def register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register ``plugin`` and reject hook implementations that match no specification."""
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise ExtensionLoadError(f"extension '{name}' cannot be registered: {exc}") from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)
        raise ExtensionLoadError(
            f"extension '{name}' implements an unknown hook: {exc}",
            hint="hook names start with 'ocsi_' and are listed in ocsi.hookspecs",
        ) from None


def load_extension(pm: pluggy.PluginManager, catalog: Catalog, dist_name: str) -> list[str]:
    """Load ``dist_name`` and its extension dependencies; return their names, dependencies first.

    Already-registered extensions are not loaded again (Ocsigen's "each file once").
    """
    names = []
    for info in catalog.load_order(dist_name):
        names.append(info.name)
        if pm.get_plugin(info.name) is not None:
            continue
        try:
            plugin = info.entry_point.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is reported by name
            raise ExtensionLoadError(
                f"extension '{info.name}' failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        register(pm, plugin, info.name)
        log.info("extension %s %s loaded", info.name, info.version)
    return names


def import_fresh(module_name: str) -> ModuleType:
    """Import ``module_name`` anew: it and its submodules are dropped from ``sys.modules`` first.

    This is how ``<library>`` site code picks up changes on every reload. Their cached bytecode
    goes too: it is checked against the source's size and its mtime in whole seconds, so an
    edit that keeps the size within the same second (``v1`` → ``v2``) would otherwise run the
    old code.
    """
    prefix = module_name + "."
    for key in [k for k in sys.modules if k == module_name or k.startswith(prefix)]:
        cached = getattr(sys.modules.pop(key), "__cached__", None)
        if cached:
            try:
                os.unlink(cached)
            except OSError:
                pass
    importlib.invalidate_caches()
    return importlib.import_module(module_name)


def library_modules(catalog: Catalog, package: str) -> list[str]:
    """Module names behind a library distribution's ``ocsi.extensions`` entry points."""
    info = catalog.info(package)
    if info is None:
        raise ExtensionNotFound(f"library distribution '{package}' is not installed")
    return [info.entry_point.module]
