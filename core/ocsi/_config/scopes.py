"""``<host>`` and ``<site>``: scopes parsed into steps, each child by the extension owning it.

A host's attributes become its :class:`~ocsi._pipeline.scope.SiteConfig`; its children, in file
order, become steps through the element parsers of the extensions enabled *so far* (an element
written before its ``<extension>`` is unknown, as in Ocsigen). ``<site>`` is the one element
the core parses itself; it nests.

Private: not part of the extension API.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

from .._extensions.enabled import EnabledExtensions
from .._http.hostport import split_host_port
from ..mime import BUILTIN_TYPES, load_mime_file
from .._pipeline.engine import Host, HostPattern, Site
from .._pipeline.https import RedirectToHTTPS, StrictTransportSecurity, hsts_value
from .._pipeline.scope import SiteConfig
from .._pipeline.step import Step
from ..sni import HostCertificate
from .context import ParseContext
from .directives import HOSTNAME
from .errors import ConfigError
from .settings import ServerSettings
from .values import parse_bool, parse_int
from .xml import Element, unknown_element

HOST_ATTRIBUTES = ("hostfilter", "defaulthostname", "defaulthttpport", "defaulthttpsport",
                   "defaultprotocol", "charset", "certificate", "privatekey", "redirect-to-https",
                   "hsts", "acme")


def split_site_path(text: str) -> tuple[str, ...]:
    """``a/b/`` -> ``("a", "b")``: empty, ``.`` and ``..`` segments dropped, each decoded."""
    return tuple(unquote(s) for s in text.split("/") if s not in ("", ".", ".."))


class ScopeParser:
    """Parses hosts and sites of one configuration build."""

    def __init__(self, settings: ServerSettings, enabled: EnabledExtensions, path: str) -> None:
        self.settings = settings
        self.enabled = enabled
        self.path = path
        self._mime_cache: dict[str, Mapping[str, str]] = {}
        #: What element parsers asked to watch (``ParseContext.watch``).
        self.watched: list[str] = []

    def host(self, el: Element) -> Host:
        el.check(attributes=HOST_ATTRIBUTES, children=None)
        text = el.get("hostfilter", "*") or "*"
        patterns = []
        for part in text.split():
            try:
                patterns.append(HostPattern.parse(part))
            except ValueError:
                raise el.error(f"invalid hostfilter entry '{part}'",
                               hint="write name, name:port or *.example.org:*") from None
        config = self._host_config(el, patterns)
        self._certificate(el, patterns)
        ctx = self._context(config, (), tuple(patterns))
        steps = self.parse_steps(el.children, ctx)
        steps = self._https_steps(el) + steps
        if el.has("hsts"):
            try:
                steps.append(StrictTransportSecurity(hsts_value(el.get("hsts") or "")))
            except ValueError as exc:
                raise el.error(f"hsts: {exc}", hint='hsts="31536000" or '
                               'hsts="max-age=31536000; includeSubDomains"') from None
        self.enabled.hook.ocsi_scope_parsed(ctx=ctx)
        return Host(patterns, steps, config, where=el.where, name=text)

    def _https_steps(self, el: Element) -> list[Step]:
        if not el.attr_value("redirect-to-https", parse_bool, False):
            return []
        if not any(p.https for p in self.settings.ports):
            raise el.error("redirect-to-https needs an HTTPS <port>",
                           hint='add <port protocol="HTTPS">443</port> and <ssl>')
        return [RedirectToHTTPS()]

    def _certificate(self, el: Element, patterns: list[HostPattern]) -> None:
        """``certificate`` and ``privatekey``: this host's TLS pair, chosen by SNI; or
        ``acme="true"``: a pair obtained from the ``<acme>`` CA."""
        from .._acme.config import acme_host

        acme = acme_host(el, patterns, self.settings)
        if acme is not None:
            self.settings.acme_hosts.append(acme)
            return
        cert, key = el.get("certificate"), el.get("privatekey")
        if cert is None and key is None:
            return
        if cert is None or key is None:
            raise el.error("a host's certificate and privatekey go together",
                           hint='<host hostfilter="…" certificate="FILE" privatekey="FILE">')
        names = tuple(n for n in (split_host_port(p.text)[0] for p in patterns) if n not in ("", "*"))
        self.settings.host_certificates.append(
            HostCertificate.read(tuple(patterns), cert, key, names, self.settings.ssl, el.where))

    def _host_config(self, el: Element, patterns: list[HostPattern]) -> SiteConfig:
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
        return SiteConfig(
            default_hostname=default_name,
            default_httpport=el.attr_value("defaulthttpport", parse_int, http_ports[0]),
            default_httpsport=el.attr_value("defaulthttpsport", parse_int, https_ports[0]),
            httpport_given=el.has("defaulthttpport"),
            httpsport_given=el.has("defaulthttpsport"),
            default_https=el.get("defaultprotocol") == "https",
            use_default_hostname=s.usedefaulthostname,
            charset=charset or None,
            mime_types=self._mime_table(el),
            uploaddir=s.uploaddir,
            maxuploadfilesize=s.maxuploadfilesize,
        )

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
        return ParseContext(self.settings, config, site_path, patterns, self.parse_steps,
                            self.enabled.options, userconf, watched=self.watched,
                            _state=self.enabled.state)

    def parse_steps(self, elements: Sequence[Element], ctx: ParseContext) -> list[Step]:
        """Each element, in order, to a step (``<site>`` here, the rest by their extension)."""
        parsers = self.enabled.element_parsers(self.path)
        steps: list[Step] = []
        for child in elements:
            if child.tag == "site":
                steps.append(self.site(child, ctx))
                continue
            entry = parsers.get(child.tag)
            if entry is None:
                where = (f'<site path="{"/".join(ctx.site_path)}">' if ctx.site_path else "<host>")
                err = unknown_element(child, where, ["site", *parsers])
                if child.tag == "eliom":
                    err.hint = ("<eliom> runs OCaml applications, which ocsi does not: a Python "
                                "application goes in <asgi app=\"module:app\"/> or <wsgi …/> "
                                "(ocsi-ext-asgi)")
                elif not parsers:
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

    def site(self, el: Element, ctx: ParseContext) -> Site:
        el.check(attributes=["path", "dir", "charset"], children=None)
        raw = el.get("path", el.get("dir"))
        if raw is None:
            raise el.error("missing path attribute in <site>", hint='write <site path="blog">')
        path = split_site_path(raw)
        charset = el.get("charset")
        config = ctx.config if charset is None else ctx.config.with_(charset=charset or None)
        inner = self._context(config, ctx.site_path + path, ctx.host_patterns, ctx.userconf)
        steps = self.parse_steps(el.children, inner)
        self.enabled.hook.ocsi_scope_parsed(ctx=inner)
        return Site(path, steps, charset, where=el.where)
