"""Building a configuration from Ocsigen's XML document (spec §2).

``<ocsigen><server>…</server></ocsigen>`` is read in two passes, as Ocsigen does: the first
(:mod:`.first_pass`) takes the process-level directives (ports, TLS, logs, command pipe), the
second runs every other child in document order: global directives, extension and library
loading (:mod:`.loading`), hosts and sites (:mod:`.scopes`), and ``<extconf>`` directories
spliced where they stand. Nothing is applied to a running server here; the result is a
:class:`Configuration` that the server turns into a runtime, or a located :class:`ConfigError`.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from .._extensions.enabled import EnabledExtensions
from .._pipeline.engine import Host
from .directives import FIRST_PASS, FLAGS, SCALARS, SERVER_ELEMENTS
from .errors import ConfigError, XMLSyntaxError
from .first_pass import FirstPass, finish_settings, read_scalar
from .loading import Loader
from .scopes import ScopeParser, split_site_path
from .settings import ServerSettings
from .xml import Element, parse_bytes, parse_file, unknown_element

__all__ = ["Builder", "Configuration", "split_site_path"]

log = logging.getLogger("ocsi.config")


@dataclass
class Configuration:
    """Everything a runtime is built from, as parsed and checked."""

    path: str
    settings: ServerSettings
    hosts: list[Host]
    #: The extensions this configuration enables (dependencies first), their options, and
    #: the hook calls limited to them.
    extensions: EnabledExtensions
    #: Plugin names of ``<library>`` modules (re-imported on every build).
    libraries: list[str] = field(default_factory=list)
    #: Files read and ``<extconf>`` directories, for the file watcher.
    files: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)

    @property
    def options(self) -> dict[str, Any]:
        """What each extension's ``ocsi_extension_options`` returned, by extension name."""
        return self.extensions.options


class Builder:
    """One configuration build. Loads extensions into ``pm`` as the document names them."""

    def __init__(self, pm: pluggy.PluginManager, path: str, data: bytes | None = None) -> None:
        self.pm = pm
        self.path = path
        self.data = data
        self.settings = ServerSettings()
        self.enabled = EnabledExtensions(pm)
        self.loader = Loader(pm, self.settings, self.enabled)
        self.scopes = ScopeParser(self.settings, self.enabled, path)
        self.hosts: list[Host] = []
        self.files: list[str] = []
        self.dirs: list[str] = []

    def build(self) -> Configuration:
        root = parse_bytes(self.data, self.path) if self.data is not None else parse_file(self.path)
        self.files.append(os.path.abspath(self.path))
        server = self._server_of(root)
        first = FirstPass(self.settings)
        for child in server.children:
            if child.tag in FIRST_PASS:
                first.read(child)
        self._second_pass(server, in_extconf=False)
        finish_settings(self.settings, self.path)
        watched = [os.path.abspath(p) for p in self.scopes.watched]
        return Configuration(self.path, self.settings, self.hosts, self.enabled,
                             self.loader.libraries,
                             self.files + self.loader.files + [p for p in watched if not os.path.isdir(p)],
                             self.dirs + [p for p in watched if os.path.isdir(p)])

    def _server_of(self, root: Element) -> Element:
        if root.tag != "ocsigen":
            raise root.error(f"the root element must be <ocsigen>, not <{root.tag}>")
        root.check(children=None)
        servers = [c for c in root.children if c.tag == "server"]
        others = [c for c in root.children if c.tag != "server"]
        if others:
            raise unknown_element(others[0], root, ["server"])
        if not servers:
            raise root.error("<ocsigen> must contain a <server> element")
        if len(servers) > 1:
            log.warning("%s: at most one <server> is possible; ignoring the others", servers[1].where)
        server = servers[0]
        server.check(children=None)
        return server

    def _second_pass(self, server: Element, in_extconf: bool) -> None:
        for el in server.children:
            tag = el.tag
            if tag in FIRST_PASS:
                if in_extconf:
                    log.warning("%s: <%s> is ignored in an <extconf> file", el.where, tag)
                continue
            if tag in SCALARS:
                read_scalar(self.settings, el)
            elif tag in FLAGS:
                el.check()
                setattr(self.settings, tag, True)
            elif tag == "charset":
                el.check(attributes=el.attrs.keys(), text=True)  # Ocsigen tolerates attributes
                self.settings.charset = el.text.strip() or None
            elif tag in ("extension", "require"):
                self.loader.extension(el)
            elif tag == "library":
                self.loader.library(el)
            elif tag == "findlib":
                self.loader.findlib(el)
            elif tag == "host":
                self.hosts.append(self.scopes.host(el))
            elif tag == "extconf":
                self._extconf(el)
            else:
                raise unknown_element(el, "<server>", SERVER_ELEMENTS)

    def _extconf(self, el: Element) -> None:
        el.check(attributes=["dir"])
        directory = el.require("dir")
        self.dirs.append(os.path.abspath(directory))
        try:
            names = sorted(os.listdir(directory), key=os.fsencode)
        except OSError as exc:
            log.error("%s: cannot read <extconf> directory %s: %s (ignored)", el.where, directory,
                      exc.strerror)
            return
        for name in names:
            if not name.endswith("conf"):
                continue
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                continue
            try:
                root = parse_file(path)
            except XMLSyntaxError as exc:
                log.error("Error while loading configuration file %s (ignored): %s", path, exc)
                continue
            except ConfigError as exc:
                log.error("%s (ignored)", exc)
                continue
            self.files.append(os.path.abspath(path))
            self._second_pass(self._server_of(root), in_extconf=True)
