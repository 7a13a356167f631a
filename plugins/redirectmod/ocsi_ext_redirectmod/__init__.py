"""ocsi-ext-redirectmod: Ocsigen's redirectmod (``<redirect>``) for ocsi. See README.md.

From Python::

    from ocsi_ext_redirectmod import redirect
    steps = [redirect(suburl="old/(.*)", dest="/new/\\\\1")]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ocsi
from ocsi import (
    DO_NOTHING,
    BytesBody,
    Element,
    Found,
    GroupTemplate,
    Headers,
    ParseContext,
    Response,
    Serve,
    Step,
    url_subject,
)

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

__all__ = ["Redirect", "redirect"]

#: (permanent, temporary) statuses, and the same keeping the method (RFC 9110 §15.4).
STATUSES = {False: (301, 302), True: (308, 307)}


class Redirect(Step):
    """Answers a matching request with a redirection to the expanded ``dest``."""

    def __init__(self, regex: ocsi.Regex, dest: GroupTemplate, *, full_url: bool | None,
                 temporary: bool = False, keep_method: bool = False) -> None:
        self.regex = regex
        self.dest = dest
        #: True: fullurl; False: suburl; None: 5.0.1's regexp= (suburl, then fullurl).
        self.full_url = full_url
        self.status = STATUSES[keep_method][temporary]

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        modes = (self.full_url,) if self.full_url is not None else (False, True)
        for full in modes:
            subject = url_subject(request, full)
            if subject is None:
                continue
            m = self.regex.fullmatch(subject)
            if m is not None:
                location = self.dest.expand_url(m)
                return Serve(Response(self.status, Headers([("location", location)]),
                                      BytesBody(b"")))
        return DO_NOTHING


def redirect(*, dest: str, suburl: str | None = None, fullurl: str | None = None,
             regexp: str | None = None, temporary: bool = False,
             keep_method: bool = False) -> Redirect:
    """The step ``<redirect>`` builds (``ValueError`` for a bad combination)."""
    given = [(k, v) for k, v in (("suburl", suburl), ("fullurl", fullurl), ("regexp", regexp))
             if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of suburl, fullurl or regexp")
    kind, pattern = given[0]
    regex = ocsi.parse_regex(pattern)  # ValueFormatError is a ValueError
    if any(c in dest for c in "\r\n"):
        raise ValueError("a Location cannot contain a line break")
    full = {"suburl": False, "fullurl": True, "regexp": None}[kind]
    return Redirect(regex, GroupTemplate(dest, regex.groups), full_url=full, temporary=temporary,
                    keep_method=keep_method)


def _flag(el: Element, name: str) -> bool:
    value = el.get(name)
    return value is not None and value.strip().lower() in (name, "true", "yes", "1")


@ocsi.documents(ocsi.ElementDoc(
    "redirect", "answers a redirection when the URL matches (one of suburl, fullurl, regexp)",
    attributes=[
        ocsi.AttributeDoc("suburl", "anchored pattern on the path below the site, with ?query, as sent"),
        ocsi.AttributeDoc("fullurl", "pattern on http[s]://host[:port]/path[?query]"),
        ocsi.AttributeDoc("regexp", "Ocsigen 5.0.1's: tried as suburl, then as fullurl"),
        ocsi.AttributeDoc("dest", r"the Location, with \1…\9 from the pattern", required=True),
        ocsi.AttributeDoc("temporary", "temporary (or true): 302 (or 307) instead of 301 (or 308)", "off"),
        ocsi.AttributeDoc("keepmethod", "keepmethod (or true): 308 (or 307), the client repeats the "
                          "method and body", "off"),
    ]))
def parse_redirect(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["suburl", "fullurl", "regexp", "dest", "temporary", "keepmethod"])
    if not any(el.has(a) for a in ("suburl", "fullurl", "regexp")):
        raise el.error("Missing attribute regexp for <redirect>",
                       hint='write suburl="REGEXP" (the sub-path) or fullurl="REGEXP"')
    if not el.has("dest"):
        raise el.error("Missing attribute dest for <redirect>", hint='e.g. dest="/new/\\1"')
    try:
        return redirect(dest=el.require("dest"), suburl=el.get("suburl"), fullurl=el.get("fullurl"),
                        regexp=el.get("regexp"), temporary=_flag(el, "temporary"),
                        keep_method=_flag(el, "keepmethod"))
    except ValueError as exc:
        raise el.error(str(exc)) from None


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"redirect": parse_redirect}
