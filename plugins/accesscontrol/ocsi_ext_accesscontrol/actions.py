"""``<if>`` and the actions: what each answers on a NotFound and on a Found state (spec §4.4).

| step            | NotFound(s)                         | Found(page)                      |
|-----------------|-------------------------------------|----------------------------------|
| ``<if>``        | runs ``<then>`` or ``<else>`` in place | the same                      |
| ``<notfound/>`` | final 404                           | final 404 (the page is dropped)  |
| ``<forbidden/>``| final 403                           | final 403 (the page is dropped)  |
| ``<nextsite/>`` | leave the site (host level: next host) | send the page now, no filters |
| ``<nexthost/>`` | next eligible host                  | send the page now                |
| ``<stop/>``     | final 404                           | send the page now                |
| ``<iffound>``   | nothing                             | runs its children in place       |
| ``<ifnotfound>``| runs its children (if ``code`` matches s) | nothing                    |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import ocsi
from ocsi import (
    DO_NOTHING,
    Answer,
    Element,
    Found,
    NotFound,
    ParseContext,
    Regex,
    Request,
    ServeNow,
    State,
    Step,
    StopAll,
    StopHost,
    StopSite,
    SubChain,
    ValueFormatError,
    parse_regex,
)

from .conditions import Condition, is_condition, parse_condition

_STOP_404 = StopAll(404)
_STOP_403 = StopAll(403)
_STOP_SITE = StopSite(404)
_STOP_HOST = StopHost(404)


def _steps(steps: Step | Iterable[Step] | None) -> list[Step]:
    if steps is None:
        return []
    if isinstance(steps, Step):
        return [steps]
    out = list(steps)
    for s in out:
        if not isinstance(s, Step):
            raise TypeError(f"{s!r} is not an ocsi.Step")
    return out


def _chain(steps: Sequence[Step]) -> Answer:
    """The answer that runs ``steps`` in place (nothing at all for an empty branch)."""
    return SubChain(tuple(steps)) if steps else DO_NOTHING


class If(Step):
    """``<if>``: evaluate ``condition`` and run the chosen branch in place, on any state."""

    def __init__(self, condition: Condition, then: Sequence[Step], else_: Sequence[Step] = (),
                 where: str = "?") -> None:
        self.condition = condition
        self.then = list(then)
        self.else_ = list(else_)
        self.where = where
        self._then = _chain(self.then)
        self._else = _chain(self.else_)

    async def handle(self, request: Request, state: State) -> Answer:
        return self._then if self.condition(request) else self._else

    def children(self) -> list[Step]:
        return self.then + self.else_

    def __repr__(self) -> str:
        return f"<If {self.condition!r} then={len(self.then)} else={len(self.else_)}>"


class _Constant(Step):
    """An action that gives the same answer on every state."""

    answer: Answer = DO_NOTHING

    def __init__(self, where: str = "?") -> None:
        self.where = where

    async def handle(self, request: Request, state: State) -> Answer:
        return self.answer

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class NotFoundAction(_Constant):
    """``<notfound/>``: answer 404 now, even over a page already found."""

    answer = _STOP_404


class Forbidden(_Constant):
    """``<forbidden/>``: answer 403 now, even over a page already found."""

    answer = _STOP_403


class _SendOr(_Constant):
    """Send a found page at once; on NotFound give ``answer``."""

    answer: Answer = _STOP_404

    async def handle(self, request: Request, state: State) -> Answer:
        if type(state) is Found:
            return ServeNow(state.response)
        return self.answer


class NextSite(_SendOr):
    """``<nextsite/>``: leave the current site (at host level: the host)."""

    answer = _STOP_SITE


class NextHost(_SendOr):
    """``<nexthost/>``: leave this host; the next eligible host gets the request."""

    answer = _STOP_HOST


class Stop(_SendOr):
    """``<stop/>``: final 404 when nothing is found; else send the page without more filters."""

    answer = _STOP_404


class IfFound(Step):
    """``<iffound>``: run the children only when a page has been found (filters)."""

    def __init__(self, steps: Sequence[Step], where: str = "?") -> None:
        self.steps = list(steps)
        self.where = where
        self._run = _chain(self.steps)

    async def handle(self, request: Request, state: State) -> Answer:
        return self._run if type(state) is Found else DO_NOTHING

    def children(self) -> list[Step]:
        return self.steps


class IfNotFound(Step):
    """``<ifnotfound [code="R"]>``: run the children when nothing is found (and R fully matches
    the current status, when given): custom error pages, fallbacks."""

    def __init__(self, steps: Sequence[Step], code: Regex | None = None,
                 where: str = "?") -> None:
        self.steps = list(steps)
        self.code = code
        self.where = where
        self._run = _chain(self.steps)

    async def handle(self, request: Request, state: State) -> Answer:
        if type(state) is not NotFound:
            return DO_NOTHING
        if self.code is not None and not self.code.matches(str(state.status)):
            return DO_NOTHING
        return self._run

    def children(self) -> list[Step]:
        return self.steps


# -- Python constructors ---------------------------------------------------------------------------
def if_(condition: Condition, then: Step | Iterable[Step] = (),
        else_: Step | Iterable[Step] | None = None) -> If:
    """``if_(ip("10.0.0.0/8"), then=[forbidden()], else_=[static(dir=…)])``."""
    if not isinstance(condition, Condition):
        raise TypeError(f"{condition!r} is not a condition (use ip(), header(), and_() …)")
    return If(condition, _steps(then), _steps(else_), where="<python>")


def notfound() -> Step:
    return NotFoundAction("<python>")


def forbidden() -> Step:
    return Forbidden("<python>")


def nextsite() -> Step:
    return NextSite("<python>")


def nexthost() -> Step:
    return NextHost("<python>")


def stop() -> Step:
    return Stop("<python>")


def iffound(steps: Step | Iterable[Step]) -> Step:
    return IfFound(_steps(steps), "<python>")


def ifnotfound(steps: Step | Iterable[Step], code: str | None = None) -> Step:
    """``code`` is a regular expression matching the whole status, e.g. ``"40."``."""
    regex = None
    if code is not None:
        regex = parse_regex(code)  # ValueFormatError is a ValueError
    return IfNotFound(_steps(steps), regex, "<python>")


# -- XML -------------------------------------------------------------------------------------------
_IF_HINT = ('write <if><CONDITION/><then>…</then><else>…</else></if> '
            '(one condition, then <then>, then an optional <else>)')


_CONDITIONS = [
    ocsi.ElementDoc("ip", "the client address is in the network", attributes=[
        ocsi.AttributeDoc("value", "an IPv4 or IPv6 address or network (10.0.0.0/8)", required=True)]),
    ocsi.ElementDoc("port", "the request came to this listening port", attributes=[
        ocsi.AttributeDoc("value", "a port number", required=True)]),
    ocsi.ElementDoc("ssl", "the connection is TLS (or a trusted <allow-forward-proto/> said https)"),
    ocsi.ElementDoc("header", "some line of the header is fully matched", attributes=[
        ocsi.AttributeDoc("name", "the header's name, in any case", required=True),
        ocsi.AttributeDoc("regexp", "the pattern (case-sensitive)", required=True)]),
    ocsi.ElementDoc("method", "the method is this one (case-sensitive)", attributes=[
        ocsi.AttributeDoc("value", "GET, POST…", required=True)]),
    ocsi.ElementDoc("protocol", "the request's HTTP version", attributes=[
        ocsi.AttributeDoc("value", "HTTP/1.0 or HTTP/1.1", required=True)]),
    ocsi.ElementDoc("path", "the decoded sub-path is fully matched", attributes=[
        ocsi.AttributeDoc("regexp", "the pattern", required=True)]),
    ocsi.ElementDoc("and", "every condition inside is true"),
    ocsi.ElementDoc("or", "some condition inside is true"),
    ocsi.ElementDoc("not", "the one condition inside is false"),
]


@ocsi.documents(ocsi.ElementDoc(
    "if", "one condition, <then> and an optional <else>: the chosen branch's steps run in place",
    children=[*_CONDITIONS, ocsi.ElementDoc("then", "the steps run when the condition is true"),
              ocsi.ElementDoc("else", "the steps run when it is false")]))
def parse_if(el: Element, ctx: ParseContext) -> Step:
    el.check(children=None)
    kids = el.children
    if not kids:
        raise el.error("bad condition in <if>: it is empty", hint=_IF_HINT)
    first = kids[0]
    if first.tag in ("then", "else"):
        raise first.error(f"bad condition in <if>: <{first.tag}> found where the condition "
                          "was expected", hint=_IF_HINT)
    condition = parse_condition(first)
    if len(kids) < 2 or kids[1].tag != "then":
        where = kids[1] if len(kids) > 1 else el
        found = f"<{kids[1].tag}>" if len(kids) > 1 else "nothing"
        raise where.error(f"bad <then> branch in <if>: expected <then> after the condition, "
                          f"found {found}", hint=_IF_HINT)
    then_el = kids[1]
    then_el.check(children=None)
    then = ctx.parse_steps(then_el.children)
    else_: list[Step] = []
    if len(kids) >= 3:
        else_el = kids[2]
        if else_el.tag != "else":
            what = ("a second condition" if is_condition(else_el) else f"<{else_el.tag}>")
            raise else_el.error(f"bad <else> branch in <if>: expected <else> or the end of "
                                f"<if>, found {what}", hint=_IF_HINT)
        if len(kids) > 3:
            raise kids[3].error(f"bad <else> branch in <if>: <else> must be last, found "
                                f"<{kids[3].tag}> after it", hint=_IF_HINT)
        else_el.check(children=None)
        else_ = ctx.parse_steps(else_el.children)
    return If(condition, then, else_)


def _simple(cls: type[Step]) -> Callable[[Element, ParseContext], Step]:
    """Parser of an action that takes no attributes, children or text."""
    def parse(el: Element, ctx: ParseContext) -> Step:
        el.check(children=())
        return cls()
    return parse


def _action(cls: type[Step], tag: str, summary: str) -> Callable[[Element, ParseContext], Step]:
    return ocsi.documents(ocsi.ElementDoc(tag, summary))(_simple(cls))


@ocsi.documents(ocsi.ElementDoc(
    "iffound", "runs the steps inside only when a page has been found (filters)"))
def parse_iffound(el: Element, ctx: ParseContext) -> Step:
    el.check(children=None)
    return IfFound(ctx.parse_steps(el.children))


@ocsi.documents(ocsi.ElementDoc(
    "ifnotfound", "runs the steps inside only when nothing has been found yet",
    attributes=[ocsi.AttributeDoc("code", "only when the current status fully matches this pattern (40.)",
                                  "any status")]))
def parse_ifnotfound(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["code"], children=None)
    regex = None
    code = el.get("code")
    if code is not None:
        try:
            regex = parse_regex(code)
        except ValueFormatError as exc:
            raise el.error(f"in <ifnotfound code>: {exc}",
                           hint='a regular expression matching the whole status, e.g. "40."'
                           ) from None
    return IfNotFound(ctx.parse_steps(el.children), regex)


PARSERS = {
    "if": parse_if,
    "notfound": _action(NotFoundAction, "notfound", "a final 404 (a page found is dropped)"),
    "forbidden": _action(Forbidden, "forbidden", "a final 403 (a page found is dropped)"),
    "nextsite": _action(NextSite, "nextsite", "leaves the current site (a page found is sent now)"),
    "nexthost": _action(NextHost, "nexthost", "leaves this host for the next one (a page found is sent now)"),
    "stop": _action(Stop, "stop", "a final 404 without trying other hosts (a page found is sent now)"),
    "iffound": parse_iffound,
    "ifnotfound": parse_ifnotfound,
}
