"""``<extension>`` and ``<library>``: loading code into the server's plugin manager.

An ``<extension>`` names an installed distribution (or, with ``module="pkg.mod"``, a module on
the import path): it and the extensions it depends on are registered once per server and
enabled for this configuration. A ``<library>`` is the user's own site code, imported anew on
every build so that a reload serves the edited code.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import os
import sys

import pluggy

from .._extensions.enabled import EnabledExtensions, single
from .._extensions.loader import Catalog, distribution_name, import_fresh, library_modules, load_extension, register
from .context import LoadContext
from .errors import ConfigError
from .settings import ServerSettings
from .xml import Element

log = logging.getLogger("ocsi.config")

EXTENSION_ATTRIBUTES = ("findlib-package", "module", "name")
OCAML_SUFFIXES = (".cmxs", ".cma", ".cmo")


class Loader:
    """Loads what one configuration build names; records the files to watch."""

    def __init__(self, pm: pluggy.PluginManager, settings: ServerSettings,
                 enabled: EnabledExtensions) -> None:
        self.pm = pm
        self.settings = settings
        self.enabled = enabled
        self.catalog = Catalog()
        #: Plugin names of ``<library>`` modules, in the order they were named.
        self.libraries: list[str] = []
        #: Source files of the modules imported, for the file watcher.
        self.files: list[str] = []

    def findlib(self, el: Element) -> None:
        """``<findlib path="DIR"/>``: distributions and modules are looked for in DIR too."""
        el.check(attributes=["path"])
        path = el.require("path")
        self.settings.findlib_paths.append(path)
        self.catalog = Catalog(self.settings.findlib_paths)
        if path not in sys.path:
            sys.path.insert(0, path)

    def extension(self, el: Element) -> None:
        given = [a for a in EXTENSION_ATTRIBUTES if el.has(a)]
        unknown = [a for a in el.attrs if a not in EXTENSION_ATTRIBUTES]
        if unknown:
            raise el.error(f"unknown attribute '{unknown[0]}' in <{el.tag}>",
                           hint="use exactly one of findlib-package, module or name")
        if len(given) != 1:
            raise el.error(f"<{el.tag}> needs exactly one of findlib-package, module or name")
        attr = given[0]
        value = el.require(attr)
        if value.split(".")[0].lower() == "eliom" or value.lower().startswith("eliom"):
            raise el.error(f"{value} is Eliom, OCaml's application framework, which ocsi does not run",
                           hint="Python applications go in <asgi app=\"module:app\"/> or "
                                "<wsgi app=\"module:app\"/> with <extension "
                                "findlib-package=\"ocsi-ext-asgi\"/>")
        if attr == "module" and not value.endswith(OCAML_SUFFIXES):
            self._python_module(el, value, fresh=False)
            return
        dist = distribution_name(
            package=value if attr == "findlib-package" else None,
            name=value if attr == "name" else None,
            module=value if attr == "module" else None,
        )
        try:
            names = load_extension(self.pm, self.catalog, dist)
        except ConfigError as exc:
            exc.where = el.where
            raise
        for name in names:
            if self.enabled.enable(name):
                self._configure(name, el.children if name == dist else [], el)
            elif name == dist and el.children:
                log.info("%s: %s is already loaded; the options of this line are ignored",
                         el.where, name)

    def library(self, el: Element) -> None:
        el.check(attributes=["module", "findlib-package", "name"], children=None)
        if el.has("module"):
            self._python_module(el, el.require("module"), fresh=True)
        elif el.has("findlib-package") or el.has("name"):
            package = el.get("findlib-package") or el.require("name")
            try:
                modules = library_modules(self.catalog, package)
            except ConfigError as exc:
                exc.where = el.where
                raise
            for module in modules:
                self._python_module(el, module, fresh=True)
        else:
            raise el.error("<library> needs a module or findlib-package attribute")

    def _configure(self, name: str, options: list[Element], el: Element) -> None:
        caller = self.enabled.addressed("ocsi_extension_options", name)
        if caller is None:
            if options:
                raise options[0].error(f"extension {name} does not accept options")
            return
        ctx = LoadContext(self.settings, el.where, _state=self.enabled.state)
        self.enabled.options[name] = single(caller(options=options, ctx=ctx))

    def _python_module(self, el: Element, module: str, fresh: bool) -> None:
        """Import a module (``<library>`` always anew) and register it as a plugin."""
        name = module
        existing = self.pm.get_plugin(name)
        if existing is None or fresh:
            try:
                mod = import_fresh(module)
            except Exception as exc:  # noqa: BLE001
                # where modules are looked for matters only when it was not found (a module
                # found but broken, a SyntaxError say, is located by its own message)
                missing = isinstance(exc, ModuleNotFoundError) and exc.name is not None and (
                    module == exc.name or module.startswith(exc.name + "."))
                err = ConfigError(f"cannot import module '{module}': {type(exc).__name__}: {exc}",
                                  where=el.where,
                                  hint="is it on sys.path, or under <findlib path>?" if missing else None)
                err.exit_code = 52
                raise err from exc
            if existing is not None:
                self.pm.unregister(name=name)
            register(self.pm, mod, name)
            self.enabled.plugin_replaced()
            src = getattr(mod, "__file__", None)
            if src:
                self.files.append(os.path.abspath(src))
        first = self.enabled.enable(name)
        if fresh and name not in self.libraries:
            self.libraries.append(name)
        if first or fresh:
            self._configure(name, el.children, el)
