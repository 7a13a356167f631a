"""``<static>`` attributes → a :data:`StaticSpec`, and the extension's ``<extension>`` options.

Forms (spec §4.1; anything else is ``Wrong attributes for <static>``):

=============================================  ==============================================
``dir="D"``                                    directory mode
``regexp="R" dest="T"`` (+ ``code``, ``root``) regexp mode
``code="C" dest="T"``                          error page for statuses matching ``C``
=============================================  ==============================================

Common optional attributes: ``cache``, and ocsi's ``precompressed``, ``etag``, ``maxranges``.
"""

from __future__ import annotations

import logging
import os
import pwd
from dataclasses import dataclass, fields
from typing import Any

from ocsi import (
    ConfigError,
    Element,
    LoadContext,
    ParseContext,
    Regex,
    ValueFormatError,
    parse_seconds,
    parse_int,
    parse_regex,
)

from .cache import DEFAULT_ENTRIES, DEFAULT_TTL, FileCache
from .dest import Template
from .encoding import SUFFIXES
from .protect import DEFAULT, Protected

log = logging.getLogger("ocsi.ext.staticmod")

ATTRIBUTES = ["dir", "regexp", "dest", "code", "root", "cache", "precompressed", "etag",
              "maxranges", "protect"]
ETAG_MODES = ("strong", "weak", "off")
DEFAULT_MAX_RANGES = 16
_ANYTHING = parse_regex(".*")


@dataclass(slots=True, frozen=True, kw_only=True)
class SpecOptions:
    """What every form of ``<static>`` has: how files are served once found."""

    #: ``None``: no caching headers; 0: ``no-cache``; N: ``max-age=N``.
    cache: int | None = None
    #: Codings whose sibling files may be served (``br``, ``zstd``, ``gzip``), by preference.
    precompressed: tuple[str, ...] = ()
    etag: str = "strong"
    max_ranges: int = DEFAULT_MAX_RANGES
    #: Names never served (``protect=``): ``.ht*``, ``.git``, ``.env`` by default.
    protect: Protected = DEFAULT
    #: Directory a user configuration file is confined to (userconf), else ``None``.
    userconf: str | None = None
    #: Working directory at configuration time (relative ``dest`` paths are resolved from it).
    cwd: str = "/"


@dataclass(slots=True, frozen=True, kw_only=True)
class DirectorySpec(SpecOptions):
    """``dir="D"``: the file at the request's sub-path below a directory."""

    #: The root, absolute, without trailing ``/`` (``""`` for ``/``).
    directory: str


@dataclass(slots=True, frozen=True, kw_only=True)
class PatternSpec(SpecOptions):
    """``regexp="R" dest="T"`` and ``code="C" dest="T"``: a path computed from a match."""

    #: Anchored pattern on the decoded sub-path (anything, for the code form).
    regexp: Regex
    dest: Template
    #: Symlink checks start below this directory; ``None``: from ``/``.
    root: Template | None = None
    #: Only when the current status matches (anchored, e.g. ``40.``): an error page.
    code: Regex | None = None


#: One ``<static>`` element, checked and compiled: which form it is decides the fields.
StaticSpec = DirectorySpec | PatternSpec


def parse_cache(text: str) -> int:
    """``cache=``: seconds, or ``no`` (= 0)."""
    t = text.strip()
    if t == "no":
        return 0
    value = parse_int(t)
    if value < 0:
        raise ValueFormatError(f"{text!r} is negative (give seconds, 0 or no)")
    return value


def parse_precompressed(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for token in text.replace(",", " ").split():
        name = token.lower()
        if name == "x-gzip":
            name = "gzip"
        if name not in SUFFIXES:
            raise ValueFormatError(f"{token!r} is not a supported precompressed coding "
                                   f"(known: gzip, br, zstd)")
        if name not in out:
            out.append(name)
    return tuple(out)


def _dir_path(directory: str, cwd: str, userconf: str | None) -> str:
    if userconf is not None:
        if ".." in directory.split("/"):
            raise ValueError(f"'..' is not allowed in dir={directory!r} of a user configuration")
        directory = userconf.rstrip("/") + "/" + directory
    path = os.path.normpath(os.path.join(cwd, directory))
    return "" if path == "/" else path.rstrip("/")


def make_spec(
    dir: str | None = None,
    regexp: str | None = None,
    dest: str | None = None,
    code: str | None = None,
    root: str | None = None,
    cache: int | None = None,
    precompressed: tuple[str, ...] = (),
    etag: str = "strong",
    max_ranges: int = DEFAULT_MAX_RANGES,
    userconf: str | None = None,
    cwd: str | None = None,
    protect: str | None = None,
) -> StaticSpec:
    """Check a combination of attributes (already converted); raises ``ValueError``."""
    cwd = cwd or os.getcwd()
    if dir is None and regexp is None and code is None:
        raise ValueError("Missing attribute dir, regexp, or code for <static>")
    if dir is not None:
        ok = regexp is None and code is None and dest is None and root is None
    elif regexp is not None:
        ok = dest is not None
    else:
        ok = dest is not None and root is None
    if not ok:
        raise ValueError("Wrong attributes for <static>")
    if root is not None and userconf is not None:
        raise ValueError("root= is not allowed in a user configuration")
    if etag not in ETAG_MODES:
        raise ValueError(f"etag={etag!r}: expected one of {', '.join(ETAG_MODES)}")
    if cache is not None and cache < 0:
        raise ValueError("cache= must be 0 or more seconds")
    if max_ranges < 0:
        raise ValueError("maxranges= must be 0 or more")
    common = SpecOptions(cache=cache, precompressed=tuple(precompressed), etag=etag,
                         max_ranges=max_ranges, userconf=userconf, cwd=cwd,
                         protect=DEFAULT if protect is None else Protected(protect))
    if dir is not None:
        return DirectorySpec(directory=_dir_path(dir, cwd, userconf), **_fields(common))
    try:
        rx = parse_regex(regexp) if regexp is not None else _ANYTHING
        code_rx = parse_regex(code) if code is not None else None
    except ValueFormatError as exc:
        raise ValueError(f"<static>: {exc}") from None
    assert dest is not None
    dest_t = Template.parse(dest, rx.groups)
    root_t = Template.parse(root, rx.groups) if root is not None else None
    return PatternSpec(regexp=rx, dest=dest_t, root=root_t, code=code_rx, **_fields(common))


def _fields(options: SpecOptions) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in fields(SpecOptions)}


def parse_static(el: Element, ctx: ParseContext) -> StaticSpec:
    """Read a ``<static>`` element into a spec (located errors)."""
    el.check(attributes=ATTRIBUTES)
    cache = el.attr_value("cache", parse_cache, None)
    pre: tuple[str, ...] = el.attr_value("precompressed", parse_precompressed, ())
    max_ranges = el.attr_value("maxranges", parse_int, DEFAULT_MAX_RANGES)
    try:
        spec = make_spec(
            dir=el.get("dir"), regexp=el.get("regexp"), dest=el.get("dest"), code=el.get("code"),
            root=el.get("root"), cache=cache, precompressed=pre, etag=el.get("etag", "strong") or "",
            max_ranges=max_ranges, userconf=ctx.userconf, protect=el.get("protect"),
        )
    except ValueError as exc:
        msg = str(exc)
        hint = None
        if msg.startswith("Wrong attributes"):
            hint = ('use dir="D", or regexp="R" dest="T" [code root], or code="C" dest="T"')
        elif msg.startswith("Missing attribute"):
            hint = 'e.g. <static dir="/var/www"/>'
        raise el.error(msg, hint) from None
    if isinstance(spec, DirectorySpec) and ctx.userconf is None:
        _warn_unusable(el, spec.directory or "/")
    return spec


def _warn_unusable(el: Element, directory: str) -> None:
    """A directory that is missing or unreadable is allowed (Ocsigen allows it: it may be
    mounted or made later), but every request there would be a silent 404, so say it at load
    and in ``ocsi --check``."""
    if not os.path.isdir(directory):
        why = "does not exist" if not os.path.exists(directory) else "is not a directory"
    elif not os.access(directory, os.R_OK | os.X_OK):
        why = "cannot be read by this process"
    else:
        return
    log.warning("%s: <static dir=\"%s\">: %s; every request it gets will be a 404 until it "
                "does", el.where, directory, why)


def serves_as_root(user: str | None) -> bool:
    """Whether requests will be served with root's rights: the process is root and ``<user>``
    does not name another user (privileges are dropped to it after binding)."""
    if os.geteuid() != 0:
        return False
    if not user:
        return True
    try:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
    except KeyError:
        return True  # an unknown user is the configuration's own error, said elsewhere
    return uid == 0


# -- <extension findlib-package="ocsi-ext-staticmod"> options ---------------------------------------
def parse_options(options: list[Element], ctx: LoadContext) -> FileCache:
    """``<filecache ttl="1" entries="4096"/>`` (``ttl="0"`` disables the cache).

    Also says, once per configuration, when the server will serve as root (see
    :func:`serves_as_root`): ``ownermatch``, the default symlink policy, then follows any link
    root owns to any file root owns (a root-owned ``/srv/www/passwd -> /etc/shadow``)."""
    if serves_as_root(ctx.settings.user):
        ctx.log.warning('%s: the server runs as root: <followsymlinks value="ownermatch"/> (the '
                        "default) follows every link root owns to any file root owns (a "
                        "root-owned /srv/www/passwd -> /etc/shadow is served); run as another "
                        '<user>, or use <followsymlinks value="never"/>', ctx.where)
    ttl, entries = DEFAULT_TTL, DEFAULT_ENTRIES
    for el in options:
        if el.tag != "filecache":
            raise el.error(f"unknown option <{el.tag}> for ocsi-ext-staticmod",
                           hint='known: <filecache ttl="1s" entries="4096"/>')
        el.check(attributes=["ttl", "entries"])
        ttl = el.attr_value("ttl", parse_seconds, ttl)
        entries = el.attr_value("entries", parse_int, entries)
        if entries < 1:
            raise el.error("entries= must be at least 1")
    return FileCache(ttl, entries)


__all__ = ["ATTRIBUTES", "ConfigError", "DirectorySpec", "PatternSpec", "SpecOptions", "StaticSpec",
           "make_spec", "parse_options", "parse_static"]
