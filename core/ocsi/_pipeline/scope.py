"""Per-scope configuration (Ocsigen's ``config_info``), carried by each request.

A host builds the initial :class:`SiteConfig` from the global directives in force where it is
written; ``extendconfiguration`` elements replace it (``request.replace(config=…)``) for the
steps that follow in the same scope, and a ``<site>`` restores the outer one when it ends. It
is frozen, so a scope change never leaks into another request.

Private: not part of the extension API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from .._config.regex import Regex
from ..mime import BUILTIN_TYPES, DEFAULT_TYPE, extension_of, is_textual

SymlinkPolicy = Literal["never", "ownermatch", "always"]


@dataclass(slots=True, frozen=True)
class NameRule:
    """A content-type or charset override: by extension, by file name, or by regexp on the path."""

    kind: Literal["extension", "file", "regexp"]
    pattern: str
    value: str
    regex: Regex | None = None

    def matches(self, path: str) -> bool:
        if self.kind == "extension":
            return extension_of(path) == self.pattern.lower()
        if self.kind == "file":
            return path.rsplit("/", 1)[-1] == self.pattern
        assert self.regex is not None
        return self.regex.matches(path, whole=False)


@dataclass(slots=True, frozen=True)
class SiteConfig:
    default_hostname: str = "localhost"
    default_httpport: int = 80
    default_httpsport: int = 443
    #: ``defaulthttpport``/``defaulthttpsport`` written on the host: they then replace the
    #: listening port in absolute URLs built from a ``Host`` without a port (a proxy in front).
    httpport_given: bool = False
    httpsport_given: bool = False
    default_https: bool = False
    #: ``<usedefaulthostname/>``: absolute URLs use the names above, never the Host header.
    use_default_hostname: bool = False
    #: Charset appended to textual types; ``None`` sends none.
    charset: str | None = "utf-8"
    mime_types: Mapping[str, str] = field(default_factory=lambda: BUILTIN_TYPES)
    default_type: str = DEFAULT_TYPE
    content_type_rules: tuple[NameRule, ...] = ()
    charset_rules: tuple[NameRule, ...] = ()
    default_charset_rule: str | None = None
    index: tuple[str, ...] = ("index.html",)
    listdirs: bool = False
    follow_symlinks: SymlinkPolicy = "ownermatch"
    #: Regexps over the whole normalised file path: 404 (hide) and 403 (forbid).
    hide: tuple[Regex, ...] = ()
    forbid: tuple[Regex, ...] = ()
    uploaddir: str | None = None
    maxuploadfilesize: int | None = 2_000_000
    #: Room for third-party extensions' scoped settings (replace it as a whole).
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def with_(self, **changes: Any) -> SiteConfig:
        return replace(self, **changes)

    def content_type(self, path: str) -> str:
        """The MIME type for ``path``: newest override rule, then the mime table, then default."""
        for rule in self.content_type_rules:
            if rule.matches(path):
                return rule.value
        return self.mime_types.get(extension_of(path), self.default_type)

    def charset_for(self, path: str) -> str | None:
        for rule in self.charset_rules:
            if rule.matches(path):
                return rule.value
        return self.default_charset_rule or self.charset

    def content_type_header(self, path: str) -> str:
        """``Content-Type`` value, with ``; charset=…`` for textual types when one is known."""
        ctype = self.content_type(path)
        if is_textual(ctype) and "charset=" not in ctype:
            cs = self.charset_for(path)
            if cs:
                return f"{ctype}; charset={cs}"
        return ctype

    def is_hidden(self, path: str) -> bool:
        return any(r.matches(path) for r in self.hide)

    def is_forbidden(self, path: str) -> bool:
        return any(r.matches(path) for r in self.forbid)
