"""Building a configuration from Ocsigen's XML document (spec §2).

``<ocsigen><server>…</server></ocsigen>`` is read in two passes, as Ocsigen does: the first
takes the process-level directives (ports, TLS, logs, command pipe), the second runs every other
child in document order: global directives, extension loading, hosts, and ``<extconf>``
directories spliced where they stand. Nothing is applied to a running server here; the result
is a :class:`Configuration` that the server turns into a runtime, or a located
:class:`ConfigError`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pluggy

from ..extensions.loader import Catalog, distribution_name, import_fresh, library_modules, load_extension, register
from ..mime import BUILTIN_TYPES, load_mime_file
from ..pipeline.engine import Host, HostPattern, Site
from ..pipeline.scope import SiteConfig
from ..pipeline.step import Step
from .context import LoadContext, ParseContext
from .errors import ConfigError, XMLSyntaxError
from .directives import (FIRST_PASS, FLAGS, HOSTNAME, SCALARS, SERVER_ELEMENTS, SYSLOG_FACILITIES,
                         parse_port, parse_ssl)
from .settings import PortSpec, ServerSettings
from .values import parse_int
from .xml import Element, parse_bytes, parse_file, unknown_element

log = logging.getLogger("ocsi.config")

def split_site_path(text: str) -> tuple[str, ...]:
    """``a/b/`` -> ``("a", "b")``: empty, ``.`` and ``..`` segments dropped, each decoded."""
    return tuple(unquote(s) for s in text.split("/") if s not in ("", ".", ".."))


@dataclass
class Configuration:
    """Everything a runtime is built from, as parsed and checked."""

    path: str
    settings: ServerSettings
    hosts: list[Host]
    #: Extension plugin names this configuration enables, dependencies first.
    extensions: list[str]
    options: dict[str, Any]
    #: Plugin names of ``<library>`` modules (re-imported on every build).
    libraries: list[str]
    #: Files read and ``<extconf>`` directories, for the file watcher.
    files: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)


class Builder:
    """One configuration build. Loads extensions into ``pm`` as the document names them."""

    def __init__(self, pm: pluggy.PluginManager, path: str, data: bytes | None = None) -> None:
        self.pm = pm
        self.path = path
        self.data = data
        self.settings = ServerSettings()
        self.catalog = Catalog()
        self.extensions: list[str] = []
        self.options: dict[str, Any] = {}
        self.libraries: list[str] = []
        self.hosts: list[Host] = []
        self.files: list[str] = []
        self.dirs: list[str] = []
        self._parsers: dict[str, tuple[str, Callable[[Element, ParseContext], Step]]] | None = None
        self._mime_cache: dict[str, Mapping[str, str]] = {}
        self._ssl_seen = False

    # -- entry point -------------------------------------------------------------------------------
    def build(self) -> Configuration:
        root = parse_bytes(self.data, self.path) if self.data is not None else parse_file(self.path)
        self.files.append(os.path.abspath(self.path))
        server = self._server_of(root)
        for child in server.children:  # first pass: process-level directives
            if child.tag in FIRST_PASS:
                self._first_pass(child)
        self._run_server(server, in_extconf=False)
        self._finish()
        return Configuration(self.path, self.settings, self.hosts, self.extensions, self.options,
                             self.libraries, self.files, self.dirs)

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

    # -- first pass --------------------------------------------------------------------------------
    def _first_pass(self, el: Element) -> None:
        s = self.settings
        if el.tag == "port":
            s.ports.append(parse_port(el))
        elif el.tag == "ssl":
            el.check(children=None)
            if self._ssl_seen:
                raise el.error("only one <ssl> element is supported")
            self._ssl_seen = True
            s.ssl = parse_ssl(el)
        elif el.tag == "syslog":
            el.check(text=True)
            facility = el.text.strip().lower()
            if facility not in SYSLOG_FACILITIES:
                raise el.error(f"unknown {el.text.strip()} facility in <syslog>",
                               hint="known: " + ", ".join(sorted(SYSLOG_FACILITIES)))
            s.syslog = facility
        else:
            self._scalar(el)
            if el.tag in ("user", "group"):
                from ..privileges import resolve

                try:  # an unknown name is reported where it is written
                    resolve(s.user if el.tag == "user" else None, s.group if el.tag == "group" else None)
                except ConfigError as exc:
                    exc.where = el.where
                    exc.hint = "create it, or remove the element to keep the current identity"
                    raise

    # -- second pass -------------------------------------------------------------------------------
    def _run_server(self, server: Element, in_extconf: bool) -> None:
        for el in server.children:
            tag = el.tag
            if tag in FIRST_PASS:
                if in_extconf:
                    log.warning("%s: <%s> is ignored in an <extconf> file", el.where, tag)
                continue
            if tag in SCALARS:
                self._scalar(el)
            elif tag in FLAGS:
                el.check()
                setattr(self.settings, tag, True)
            elif tag == "charset":
                el.check(attributes=el.attrs.keys(), text=True)  # Ocsigen tolerates attributes
                self.settings.charset = el.text.strip() or None
            elif tag in ("extension", "require"):
                self._extension(el)
            elif tag == "library":
                self._library(el)
            elif tag == "findlib":
                el.check(attributes=["path"])
                path = el.require("path")
                self.settings.findlib_paths.append(path)
                self.catalog = Catalog(self.settings.findlib_paths)
                if path not in sys.path:
                    sys.path.insert(0, path)
            elif tag == "host":
                self.hosts.append(self._host(el))
            elif tag == "extconf":
                self._extconf(el)
            else:
                raise unknown_element(el, "<server>", SERVER_ELEMENTS)

    def _scalar(self, el: Element) -> None:
        el.check(text=True)
        attr, convert = SCALARS[el.tag]
        setattr(self.settings, attr, el.value(convert))

    def _finish(self) -> None:
        s = self.settings
        if s.minthreads > s.maxthreads:
            raise ConfigError("maxthreads should be greater than minthreads", where=self.path)
        if s.maxretries < 1:
            log.warning("%s: <maxretries> %d makes every request fail", self.path, s.maxretries)
        if s.ssl is not None:
            if not s.ssl.certificate and s.ssl.privatekey:
                raise ConfigError("SSL certificate is missing", where=s.ssl.where,
                                  hint="add <certificate>FILE</certificate> inside <ssl>")
            if s.ssl.certificate and not s.ssl.privatekey:
                raise ConfigError("SSL key is missing", where=s.ssl.where,
                                  hint="add <privatekey>FILE</privatekey> inside <ssl>")
            if s.ssl.certificate and not any(p.https for p in s.ports):
                log.warning("%s: <ssl> without an HTTPS <port>: listening on *:443 as Ocsigen does",
                            s.ssl.where)
                s.ports.append(PortSpec(None, 443, True, s.ssl.where))
        https = [p for p in s.ports if p.https]
        if https and (s.ssl is None or not s.ssl.certificate):
            raise ConfigError("HTTPS port declared without a certificate", where=https[0].where,
                              hint="add <ssl><certificate>…</certificate><privatekey>…</privatekey></ssl>")
        if not s.ports:
            s.ports.append(PortSpec(None, 80, False, self.path))

    # -- extensions --------------------------------------------------------------------------------
    def _extension(self, el: Element) -> None:
        given = [a for a in ("findlib-package", "module", "name") if el.has(a)]
        unknown = [a for a in el.attrs if a not in ("findlib-package", "module", "name")]
        if unknown:
            raise el.error(f"unknown attribute '{unknown[0]}' in <{el.tag}>",
                           hint="use exactly one of findlib-package, module or name")
        if len(given) != 1:
            raise el.error(f"<{el.tag}> needs exactly one of findlib-package, module or name")
        attr = given[0]
        value = el.require(attr)
        if attr == "module" and not value.endswith((".cmxs", ".cma", ".cmo")):
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
            if name not in self.extensions:
                self.extensions.append(name)
                self._parsers = None
                self._configure(name, el.children if name == dist else [], el)
            elif name == dist and el.children:
                log.info("%s: %s is already loaded; the options of this line are ignored",
                         el.where, name)

    def _configure(self, name: str, options: list[Element], el: Element) -> None:
        impl = next((i for i in self.pm.hook.ocsi_extension_options.get_hookimpls()
                     if i.plugin_name == name), None)
        if impl is None:
            if options:
                raise options[0].error(f"extension {name} does not accept options")
            return
        ctx = LoadContext(self.settings, el.where)
        self.options[name] = impl.function(options=options, ctx=ctx)

    def _library(self, el: Element) -> None:
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

    def _python_module(self, el: Element, module: str, fresh: bool) -> None:
        """Import a module (``<library>`` always anew) and register it as a plugin."""
        name = module
        existing = self.pm.get_plugin(name)
        if existing is not None and not fresh:
            pass
        else:
            try:
                mod = import_fresh(module)
            except Exception as exc:  # noqa: BLE001
                err = ConfigError(f"cannot import module '{module}': {type(exc).__name__}: {exc}",
                                  where=el.where, hint="is it on sys.path, or under <findlib path>?")
                err.exit_code = 52
                raise err from exc
            if existing is not None:
                self.pm.unregister(name=name)
            register(self.pm, mod, name)
            src = getattr(mod, "__file__", None)
            if src:
                self.files.append(os.path.abspath(src))
        if name not in self.extensions:
            self.extensions.append(name)
            self._parsers = None
        if fresh and name not in self.libraries:
            self.libraries.append(name)
        self._configure(name, el.children, el)

    def element_parsers(self) -> dict[str, tuple[str, Callable[[Element, ParseContext], Step]]]:
        """``{tag: (extension, parser)}`` for the extensions this configuration enabled so far."""
        if self._parsers is None:
            table: dict[str, tuple[str, Callable[[Element, ParseContext], Step]]] = {}
            for impl in self.pm.hook.ocsi_elements.get_hookimpls():
                if impl.plugin_name not in self.extensions:
                    continue
                for tag, parser in (impl.function() or {}).items():
                    if tag in table or tag == "site":
                        other = table[tag][0] if tag in table else "the core"
                        raise ConfigError(
                            f"element <{tag}> is claimed by both {other} and {impl.plugin_name}",
                            where=self.path, hint="load only one of these extensions")
                    table[tag] = (impl.plugin_name, parser)
            self._parsers = table
        return self._parsers

    # -- extconf -----------------------------------------------------------------------------------
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
            self._run_server(self._server_of(root), in_extconf=True)

    # -- hosts and sites ---------------------------------------------------------------------------
    def _host(self, el: Element) -> Host:
        el.check(attributes=["hostfilter", "defaulthostname", "defaulthttpport",
                             "defaulthttpsport", "defaultprotocol", "charset"], children=None)
        text = el.get("hostfilter", "*") or "*"
        patterns = []
        for part in text.split():
            try:
                patterns.append(HostPattern.parse(part))
            except ValueError:
                raise el.error(f"invalid hostfilter entry '{part}'",
                               hint="write name, name:port or *.example.org:*") from None
        s = self.settings
        default_name = el.get("defaulthostname")
        if default_name is None:
            default_name = next((p.text.split(":")[0] for p in patterns
                                 if "*" not in p.text and p.port in (None, 80)), None)
            if default_name is None:
                default_name = socket.gethostname() or "localhost"
        if not HOSTNAME.match(default_name):
            raise el.error(f"incorrect hostname {default_name}",
                           hint="defaulthostname is a DNS name such as www.example.org")
        http_ports = [p.port for p in s.ports if not p.https] or [80]
        https_ports = [p.port for p in s.ports if p.https] or [443]
        charset = el.get("charset", s.charset)
        config = SiteConfig(
            default_hostname=default_name,
            default_httpport=el.attr_value("defaulthttpport", parse_int, http_ports[0]),
            default_httpsport=el.attr_value("defaulthttpsport", parse_int, https_ports[0]),
            default_https=el.get("defaultprotocol") == "https",
            use_default_hostname=s.usedefaulthostname,
            charset=charset or None,
            mime_types=self._mime_table(el),
            uploaddir=s.uploaddir,
            maxuploadfilesize=s.maxuploadfilesize,
        )
        ctx = self._context(config, (), tuple(patterns))
        steps = self.parse_steps(el.children, ctx)
        self.pm.hook.ocsi_scope_parsed(ctx=ctx)
        return Host(patterns, steps, config, where=el.where, name=text)

    def _mime_table(self, el: Element) -> Mapping[str, str]:
        path = self.settings.mimefile
        if not path:
            return BUILTIN_TYPES
        if path not in self._mime_cache:
            try:
                self._mime_cache[path] = load_mime_file(path)
            except OSError as exc:
                raise ConfigError(f"unable to read the mime.types file {path}: {exc.strerror}",
                                  where=el.where, hint="check <mimefile>") from None
        return self._mime_cache[path]

    def _context(self, config: SiteConfig, site_path: tuple[str, ...],
                 patterns: tuple[HostPattern, ...], userconf: str | None = None) -> ParseContext:
        return ParseContext(self.settings, config, site_path, patterns, self._parse_steps,
                            self.options, userconf)

    def parse_steps(self, elements: Sequence[Element], ctx: ParseContext) -> list[Step]:
        return self._parse_steps(elements, ctx)

    def _parse_steps(self, elements: Sequence[Element], ctx: ParseContext) -> list[Step]:
        parsers = self.element_parsers()
        steps: list[Step] = []
        for child in elements:
            if child.tag == "site":
                steps.append(self._site(child, ctx))
                continue
            entry = parsers.get(child.tag)
            if entry is None:
                where = (f'<site path="{"/".join(ctx.site_path)}">' if ctx.site_path else "<host>")
                err = unknown_element(child, where, ["site", *parsers])
                if not parsers:
                    err.hint = ("no extension is loaded before this point: add "
                                "<extension findlib-package=\"ocsi-ext-…\"/> before the <host>")
                raise err
            ext, parser = entry
            try:
                step = parser(child, ctx)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - a parser bug is still located
                raise child.error(f"extension {ext} failed to parse <{child.tag}>: "
                                  f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(step, Step):
                raise child.error(f"extension {ext} returned {step!r} for <{child.tag}>, not a Step")
            if step.where == "?":
                step.where = child.where
            steps.append(step)
        return steps

    def _site(self, el: Element, ctx: ParseContext) -> Site:
        el.check(attributes=["path", "dir", "charset"], children=None)
        raw = el.get("path", el.get("dir"))
        if raw is None:
            raise el.error("missing path attribute in <site>", hint='write <site path="blog">')
        path = split_site_path(raw)
        charset = el.get("charset")
        config = ctx.config if charset is None else ctx.config.with_(charset=charset or None)
        inner = self._context(config, ctx.site_path + path, ctx.host_patterns, ctx.userconf)
        steps = self.parse_steps(el.children, inner)
        self.pm.hook.ocsi_scope_parsed(ctx=inner)
        return Site(path, steps, charset, where=el.where)
