"""XML parsers of the extendconfiguration elements (spec §4.7)."""

from __future__ import annotations

from collections.abc import Callable

from ocsi import Element, NameRule, ParseContext, parse_size

from . import rules as R
from . import steps as S


def _followsymlinks(el: Element, ctx: ParseContext) -> S.Extend:
    el.check(attributes=["value"])
    value = el.require("value", hint='write <followsymlinks value="ownermatch"/>')
    if value not in S.POLICIES:
        raise el.error(f"wrong value for attribute value of <followsymlinks>: {value!r}",
                       hint="expected never, ownermatch or always")
    if value == "always" and ctx.userconf is not None:
        raise el.error('<followsymlinks value="always"/> is not allowed in a user configuration',
                       hint="use ownermatch or never")
    return S.followsymlinks(value)


def _listdirs(el: Element, ctx: ParseContext) -> S.Extend:
    el.check(attributes=["value"])
    value = el.require("value", hint='write <listdirs value="true"/>')
    if value not in ("true", "false"):
        raise el.error(f"wrong value for attribute value of <listdirs>: {value!r}",
                       hint="expected true or false (lower case)")
    return S.listdirs(value == "true")


def _defaultindex(el: Element, ctx: ParseContext) -> S.Extend:
    el.check(children=["index"])
    names = []
    for child in el.children:
        child.check(text=True)
        name = child.text.strip()
        if not name:
            raise child.error("<index> needs a file name", hint="<index>index.html</index>")
        names.append(name)
    return S.defaultindex(names)


def _patterns(el: Element) -> dict[str, list[str]]:
    el.check(children=["extension", "file", "regexp"])
    out: dict[str, list[str]] = {"extensions": [], "files": [], "regexps": []}
    for child in el.children:
        attr = {"extension": "ext", "file": "file", "regexp": "regexp"}[child.tag]
        child.check(attributes=[attr])
        value = child.require(attr)
        if child.tag == "regexp":
            try:
                R.regexp_pattern(value)
            except ValueError as exc:
                raise child.error(str(exc)) from None
        out[child.tag + "s" if child.tag != "regexp" else "regexps"].append(value)
    return out


def _hidefile(el: Element, ctx: ParseContext) -> S.Extend:
    return S.hidefile(**_patterns(el))


def _forbidfile(el: Element, ctx: ParseContext) -> S.Extend:
    return S.forbidfile(**_patterns(el))


def _name_rules(el: Element) -> list[NameRule]:
    el.check(attributes=["default"], children=["extension", "file", "regexp"])
    out = []
    for child in el.children:
        attr = {"extension": "ext", "file": "file", "regexp": "regexp"}[child.tag]
        child.check(attributes=[attr, "value"])
        pattern = child.require(attr)
        value = child.require("value")
        try:
            out.append(R.name_rule(child.tag, pattern, value))
        except ValueError as exc:
            raise child.error(str(exc)) from None
    return out


def _charset(el: Element, ctx: ParseContext) -> S.Extend:
    return S.charset(default=el.get("default"), rules=_name_rules(el))


def _contenttype(el: Element, ctx: ParseContext) -> S.Extend:
    return S.contenttype(default=el.get("default"), rules=_name_rules(el))


def _uploaddir(el: Element, ctx: ParseContext) -> S.Extend:
    el.check(text=True)
    return S.uploaddir(el.text.strip() or None)  # empty: uploads disabled (Ocsigen's doc)


def _maxuploadfilesize(el: Element, ctx: ParseContext) -> S.Extend:
    el.check(text=True)
    return S.maxuploadfilesize(el.value(parse_size))


PARSERS: dict[str, Callable[[Element, ParseContext], S.Extend]] = {
    "followsymlinks": _followsymlinks,
    "listdirs": _listdirs,
    "defaultindex": _defaultindex,
    "hidefile": _hidefile,
    "forbidfile": _forbidfile,
    "charset": _charset,
    "contenttype": _contenttype,
    "uploaddir": _uploaddir,
    "maxuploadfilesize": _maxuploadfilesize,
}
