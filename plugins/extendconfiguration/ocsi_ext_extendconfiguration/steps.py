"""The step every extendconfiguration element becomes, and Python constructors for them.

On ``NotFound(s)`` the step answers ``ContinueWith(request with the changed configuration)``
(status kept), so the change holds for the following steps of the same scope and is dropped
when the enclosing ``<site>`` ends; on ``Found`` it does nothing (spec §4.7). The changed
configuration is computed once per input configuration and reused (configurations are frozen),
so a request pays a dictionary lookup and a request copy, not a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ocsi import DO_NOTHING, ContinueWith, Found, NameRule, SiteConfig, Step

from . import rules as R

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

POLICIES = ("never", "ownermatch", "always")
_MEMO_MAX = 64


class Extend(Step):
    """Apply ``update(config) -> config`` for the steps that follow in the scope."""

    def __init__(self, update: Callable[[SiteConfig], SiteConfig], name: str = "extend",
                 where: str = "<python>") -> None:
        self.update = update
        self.name = name
        self.where = where
        self._memo: dict[int, tuple[SiteConfig, SiteConfig]] = {}

    def __repr__(self) -> str:
        return f"<Extend {self.name}>"

    def apply(self, config: SiteConfig) -> SiteConfig:
        item = self._memo.get(id(config))
        if item is not None and item[0] is config:
            return item[1]
        new = self.update(config)
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[id(config)] = (config, new)  # keeps ``config`` alive: its id stays unique
        return new

    async def handle(self, request: Request, state: State) -> Answer:
        if type(state) is Found:
            return DO_NOTHING
        return ContinueWith(request.replace(config=self.apply(request.config)))


# -- Python constructors (also used by the XML parsers) ------------------------------------------
def extend(**changes: Any) -> Extend:
    """Set :class:`~ocsi.SiteConfig` fields as given, e.g. ``extend(listdirs=True)``."""
    fields = set(SiteConfig.__dataclass_fields__)
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ValueError(f"unknown SiteConfig field(s): {', '.join(unknown)}")
    return Extend(lambda c: c.with_(**changes), "extend " + ", ".join(sorted(changes)))


def followsymlinks(policy: str) -> Extend:
    if policy not in POLICIES:
        raise ValueError(f"{policy!r}: expected never, ownermatch or always")
    return Extend(lambda c: c.with_(follow_symlinks=policy), f"followsymlinks {policy}")


def listdirs(enabled: bool) -> Extend:
    return Extend(lambda c: c.with_(listdirs=bool(enabled)), f"listdirs {bool(enabled)}")


def defaultindex(names: Iterable[str]) -> Extend:
    index = tuple(names)
    return Extend(lambda c: c.with_(index=index), f"defaultindex {list(index)}")


def hidefile(extensions: Iterable[str] = (), files: Iterable[str] = (),
             regexps: Iterable[str] = ()) -> Extend:
    pats = R.file_patterns(extensions, files, regexps)
    return Extend(lambda c: c.with_(hide=c.hide + pats), "hidefile")


def forbidfile(extensions: Iterable[str] = (), files: Iterable[str] = (),
               regexps: Iterable[str] = ()) -> Extend:
    pats = R.file_patterns(extensions, files, regexps)
    return Extend(lambda c: c.with_(forbid=c.forbid + pats), "forbidfile")


def _rules(extensions: Mapping[str, str], files: Mapping[str, str],
           regexps: Iterable[tuple[str, str]]) -> list[NameRule]:
    out = [R.name_rule("extension", k, v) for k, v in extensions.items()]
    out += [R.name_rule("file", k, v) for k, v in files.items()]
    out += [R.name_rule("regexp", k, v) for k, v in regexps]
    return out


def charset(default: str | None = None, extensions: Mapping[str, str] | None = None,
            files: Mapping[str, str] | None = None,
            regexps: Iterable[tuple[str, str]] = (), *, rules: list[NameRule] | None = None) -> Extend:
    """Charset rules (``rules``: :class:`ocsi.NameRule` in document order)."""
    new = R.newest_first(rules if rules is not None else _rules(extensions or {}, files or {}, regexps))

    def update(c: SiteConfig) -> SiteConfig:
        return c.with_(charset_rules=new + c.charset_rules,
                       default_charset_rule=default if default is not None else c.default_charset_rule)

    return Extend(update, "charset")


def contenttype(default: str | None = None, extensions: Mapping[str, str] | None = None,
                files: Mapping[str, str] | None = None,
                regexps: Iterable[tuple[str, str]] = (), *, rules: list[NameRule] | None = None) -> Extend:
    """Content-type rules; ``default`` replaces ``application/octet-stream`` for unknown names."""
    new = R.newest_first(rules if rules is not None else _rules(extensions or {}, files or {}, regexps))

    def update(c: SiteConfig) -> SiteConfig:
        return c.with_(content_type_rules=new + c.content_type_rules,
                       default_type=default if default is not None else c.default_type)

    return Extend(update, "contenttype")


def uploaddir(path: str | None) -> Extend:
    return Extend(lambda c: c.with_(uploaddir=path or None), f"uploaddir {path!r}")


def maxuploadfilesize(size: int | None) -> Extend:
    return Extend(lambda c: c.with_(maxuploadfilesize=size), f"maxuploadfilesize {size!r}")
