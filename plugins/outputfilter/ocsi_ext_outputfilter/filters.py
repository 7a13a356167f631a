"""``<outputfilter>`` and ``<sethttpcode>``: filters on the page found so far.

- ``<outputfilter header="H" regexp="R" dest="T"/>``: in every value of ``H``, every match of
  ``R`` (unanchored, as Ocsigen does) is replaced by ``T``, where ``\\1``…``\\9`` are its
  groups. The revproxy page's use: ``header="location"`` to turn a backend's redirects into
  public ones.
- ``<outputfilter header="H" dest="V" [replace="true|false"]/>``: adds ``H: V`` when the page
  has no ``H`` (no ``replace``), always (``false``), or in place of every ``H`` (``true``).
- ``<sethttpcode code="N"/>``: the page's status becomes ``N``.

They act on a found page only; a request not answered yet passes by.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING

import ocsi
from ocsi import (
    DO_NOTHING,
    Element,
    Found,
    GroupTemplate,
    ParseContext,
    Regex,
    RegexMatch,
    Step,
    parse_bool,
    parse_regex,
)

if TYPE_CHECKING:
    from ocsi import Answer, Request, State



#: Headers whose value a browser follows as a URL: groups copied into them are made unable to
#: name another host (:meth:`ocsi.GroupTemplate.expand_url`).
_URL_HEADERS = frozenset(("location", "content-location"))


class RewriteHeader(Step):
    def __init__(self, header: str, regexp: Regex, dest: GroupTemplate) -> None:
        self.header = header.lower()
        self.regexp = regexp
        self.dest = dest

    async def handle(self, request: Request, state: State) -> Answer:
        if not isinstance(state, Found):
            return DO_NOTHING
        headers = state.response.headers
        values = headers.get_all(self.header)
        if not values:
            return DO_NOTHING
        replace = self._url if self.header in _URL_HEADERS else self.dest
        rewritten = [self.regexp.sub(replace, v) for v in values]
        if rewritten != values:
            headers.remove(self.header)
            for v in rewritten:
                headers.add(self.header, v)
        return DO_NOTHING

    def _url(self, match: RegexMatch) -> str:
        return self.dest.expand_url(match, at_start=match.start() == 0)


class AddHeader(Step):
    def __init__(self, header: str, value: str, replace: bool | None) -> None:
        self.header = header.lower()
        self.value = value
        self.replace = replace

    async def handle(self, request: Request, state: State) -> Answer:
        if not isinstance(state, Found):
            return DO_NOTHING
        headers = state.response.headers
        if self.replace is None:
            if self.header not in headers:
                headers.add(self.header, self.value)
        else:
            if self.replace:
                headers.remove(self.header)
            headers.add(self.header, self.value)
        return DO_NOTHING


class SetCode(Step):
    def __init__(self, code: int) -> None:
        self.code = code

    async def handle(self, request: Request, state: State) -> Answer:
        if not isinstance(state, Found):
            return DO_NOTHING
        state.response.status = self.code
        return DO_NOTHING


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_name(el: Element) -> str:
    name = el.require("header", hint='e.g. header="location"')
    if not _TOKEN.fullmatch(name):
        raise el.error(f"header={name!r} is not a header name")
    return name


def outputfilter(header: str, dest: str, regexp: str | None = None,
                 replace: bool | None = None) -> Step:
    """The step ``<outputfilter>`` builds, from Python (``ValueError`` for a bad combination)."""
    if not _TOKEN.fullmatch(header):
        raise ValueError(f"{header!r} is not a header name")
    if regexp is not None:
        if replace is not None:
            raise ValueError("replace= goes with adding a header, not with regexp=")
        rx = parse_regex(regexp)  # ValueFormatError is a ValueError
        return RewriteHeader(header, rx, GroupTemplate(dest, rx.groups))
    if "\r" in dest or "\n" in dest:
        raise ValueError("a header value cannot contain a line break")
    return AddHeader(header, dest, replace)


def sethttpcode(code: int) -> Step:
    try:
        status = HTTPStatus(code)
    except ValueError:
        raise ValueError(f"{code} is not a known HTTP status") from None
    if status < 200:
        raise ValueError(f"{code}: a page's status must be final (200 or more)")
    return SetCode(int(status))


@ocsi.documents(ocsi.ElementDoc(
    "outputfilter", "changes a header of the page found: rewrites its values (regexp) or adds it",
    attributes=[
        ocsi.AttributeDoc("header", "the header's name", required=True),
        ocsi.AttributeDoc("regexp", r"rewrite: every match in every value is replaced by dest (\1…\9 its "
                     "groups); not anchored"),
        ocsi.AttributeDoc("dest", "the replacement (with regexp), else the value added", required=True),
        ocsi.AttributeDoc("replace", "adding: true replaces every value, false always adds; absent: added "
                     "only when the page has none", "absent"),
    ]))
def parse_outputfilter(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["header", "regexp", "dest", "replace"])
    header = _header_name(el)
    dest = el.require("dest", hint='the new value (with regexp=: the replacement, \\1 for groups)')
    replace = el.attr_value("replace", parse_bool, None) if el.has("replace") else None
    if el.has("regexp"):
        if replace is not None:
            raise el.error("replace= goes with adding a header, not with regexp=",
                           hint="rewrite with header regexp dest, or add with header dest replace")
        rx = el.attr_value("regexp", parse_regex, parse_regex(""))
        try:
            return RewriteHeader(header, rx, GroupTemplate(dest, rx.groups))
        except ValueError as exc:
            raise el.error(str(exc)) from None
    try:
        return outputfilter(header, dest, replace=replace)
    except ValueError as exc:
        raise el.error(str(exc)) from None


@ocsi.documents(ocsi.ElementDoc(
    "sethttpcode", "changes the status of the page found",
    attributes=[ocsi.AttributeDoc("code", "a known HTTP status, 200 or more", required=True)]))
def parse_sethttpcode(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["code"])
    text = el.require("code", hint='e.g. <sethttpcode code="418"/>')
    try:
        return sethttpcode(int(text.strip()))
    except ValueError:
        raise el.error("Invalid code attribute in <sethttpcode>",
                       hint=f"{text!r}: give a known HTTP status of 200 or more") from None
