"""XML parsers of the extendconfiguration elements (spec §4.7)."""

from __future__ import annotations

from collections.abc import Callable

import ocsi
from ocsi import Element, NameRule, ParseContext, parse_size

from . import rules as R
from . import steps as S


@ocsi.documents(ocsi.ElementDoc(
    "followsymlinks", "symlink policy for the static files of the steps that follow",
    attributes=[ocsi.AttributeDoc("value", "never, ownermatch (a link whose owner is its target's) or always "
                "(refused in user configurations)", required=True)]))
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


@ocsi.documents(ocsi.ElementDoc(
    "listdirs", "directory listings for the steps that follow (off by default)",
    attributes=[ocsi.AttributeDoc("value", "true or false", required=True)]))
def _listdirs(el: Element, ctx: ParseContext) -> S.Extend:
    el.check(attributes=["value"])
    value = el.require("value", hint='write <listdirs value="true"/>')
    if value not in ("true", "false"):
        raise el.error(f"wrong value for attribute value of <listdirs>: {value!r}",
                       hint="expected true or false (lower case)")
    return S.listdirs(value == "true")


@ocsi.documents(ocsi.ElementDoc(
    "defaultindex", "replaces the index file names (default index.html): the first existing one wins; "
    "empty: no index",
    children=[ocsi.ElementDoc("index", "one name, in order", text="a file name")]))
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


_RULES = [
    ocsi.ElementDoc("extension", "files with this extension",
                    attributes=[ocsi.AttributeDoc("ext", "the extension", required=True)]),
    ocsi.ElementDoc("file", "files with this name",
                    attributes=[ocsi.AttributeDoc("file", "the name", required=True)]),
    ocsi.ElementDoc("regexp", "files whose path matches",
                    attributes=[ocsi.AttributeDoc("regexp", "the pattern", required=True)]),
]


@ocsi.documents(ocsi.ElementDoc(
    "hidefile", "files to answer as if they did not exist (404), for the steps that follow", children=_RULES))
def _hidefile(el: Element, ctx: ParseContext) -> S.Extend:
    return S.hidefile(**_patterns(el))


@ocsi.documents(ocsi.ElementDoc(
    "forbidfile", "files to refuse (403), for the steps that follow", children=_RULES))
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


def _name_rule_docs(what: str) -> list[ocsi.ElementDoc]:
    value = ocsi.AttributeDoc("value", what, required=True)
    return [ocsi.ElementDoc(d.tag, d.summary, attributes=[*d.attributes, value]) for d in _RULES]


@ocsi.documents(ocsi.ElementDoc(
    "charset", "the charset appended to textual Content-Types, by file",
    attributes=[ocsi.AttributeDoc("default", "for files no rule names", "the site's, else <charset>")],
    children=_name_rule_docs("the charset")))
def _charset(el: Element, ctx: ParseContext) -> S.Extend:
    return S.charset(default=el.get("default"), rules=_name_rules(el))


@ocsi.documents(ocsi.ElementDoc(
    "contenttype", "Content-Type overrides, by file",
    attributes=[ocsi.AttributeDoc("default", "for unknown names", "`application/octet-stream`")],
    children=_name_rule_docs("the Content-Type")))
def _contenttype(el: Element, ctx: ParseContext) -> S.Extend:
    return S.contenttype(default=el.get("default"), rules=_name_rules(el))


@ocsi.documents(ocsi.ElementDoc(
    "uploaddir", "the upload directory of the scope", text="a directory; empty disables uploads"))
def _uploaddir(el: Element, ctx: ParseContext) -> S.Extend:
    el.check(text=True)
    return S.uploaddir(el.text.strip() or None)  # empty: uploads disabled (Ocsigen's doc)


@ocsi.documents(ocsi.ElementDoc(
    "maxuploadfilesize", "the upload size limit of the scope", text="a size (2MB, infinity)"))
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
