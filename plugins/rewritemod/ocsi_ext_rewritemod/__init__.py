"""ocsi-ext-rewritemod: Ocsigen's rewritemod (``<rewrite>``) for ocsi, working. See README.md.

From Python::

    from ocsi_ext_rewritemod import rewrite
    steps = [rewrite(regexp="old/(.*)", url="new/\\\\1", continue_=True), static(dir="/srv/www")]
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import ocsi
from ocsi import (
    DO_NOTHING,
    ContinueWith,
    Element,
    Found,
    GroupTemplate,
    ParseContext,
    RetryWith,
    ServeNow,
    Step,
    error_response,
    url_subject,
)

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

__all__ = ["Rewrite", "rewrite"]

log = logging.getLogger("ocsi.ext.rewritemod")


class Rewrite(Step):
    """A matching request is given the expanded URL: from the first host again (the default),
    or to the following steps (``continue``)."""

    def __init__(self, regex: ocsi.Regex, url: GroupTemplate, continue_: bool = False,
                 fullrewrite: bool = False, where: str = "?") -> None:
        self.regex = regex
        self.url = url
        self.continue_ = continue_
        #: Accepted for Ocsigen's configurations: it concerns Eliom's "original path" only.
        self.fullrewrite = fullrewrite
        self.where = where

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING
        subject = url_subject(request, False)
        m = self.regex.fullmatch(subject) if subject is not None else None
        if m is None:
            return DO_NOTHING  # not concerned: the following steps see the request unchanged
        target = self.url.expand(m)
        if not target.startswith("/"):
            target = "/" + target  # as Ocsigen: the new URL is read from the root
        try:
            new = request.with_target(target)
        except ValueError as exc:
            log.error("%s: <rewrite> of %s gave %r, which cannot be requested: %s",
                      self.where, request.target, target, exc)
            return ServeNow(error_response(500))
        depth = request.depth
        if self.continue_ and new.segments[:depth] == request.segments[:depth]:
            # still below the enclosing site: the steps after this one see the new sub-path
            return ContinueWith(new)
        return RetryWith(new)


def rewrite(*, regexp: str, url: str, continue_: bool = False, fullrewrite: bool = False) -> Rewrite:
    """The step ``<rewrite>`` builds (``ValueError`` for a bad regular expression or group)."""
    regex = ocsi.parse_regex(regexp)  # ValueFormatError is a ValueError
    return Rewrite(regex, GroupTemplate(url, regex.groups), continue_, fullrewrite)


def _flag(el: Element, name: str) -> bool:
    value = el.get(name)
    return value is not None and value.strip().lower() in (name, "true", "yes", "1")


@ocsi.documents(ocsi.ElementDoc(
    "rewrite", "gives a matching request another URL; processing starts again from the first host "
    "(bounded by <maxretries>) unless continue",
    attributes=[
        ocsi.AttributeDoc("regexp", "anchored pattern on the path below the site, with ?query, as sent",
                          required=True),
        ocsi.AttributeDoc("url", r"the new URL (from the root), with \1…\9 from regexp"),
        ocsi.AttributeDoc("dest", "the same as url (one of the two is required)"),
        ocsi.AttributeDoc("continue", "continue (or true): the following steps of the scope see the "
                          "new URL instead of a restart", "off"),
        ocsi.AttributeDoc("fullrewrite", "accepted for Ocsigen configurations (it concerns Eliom only)",
                          "off"),
    ]))
def parse_rewrite(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["regexp", "url", "dest", "continue", "fullrewrite"])
    regexp = el.require("regexp", hint='e.g. <rewrite regexp="old/(.*)" url="new/\\1"/>')
    if el.has("url") and el.has("dest"):
        raise el.error("<rewrite> takes url or dest (the same), not both")
    url = el.get("url") if el.has("url") else el.get("dest")
    if url is None:
        raise el.error("url attribute expected for <rewrite>", hint='e.g. url="new/\\1"')
    try:
        step = rewrite(regexp=regexp, url=url, continue_=_flag(el, "continue"),
                       fullrewrite=_flag(el, "fullrewrite"))
    except ValueError as exc:
        raise el.error(str(exc)) from None
    step.where = el.where
    return step


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"rewrite": parse_rewrite}
