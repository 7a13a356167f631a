"""ocsi-ext-cors: Ocsigen's CORS extension (``<cors>``) for ocsi, with an allow-list. See README.md.

From Python::

    from ocsi_ext_cors import cors
    steps = [static(dir="/srv/api"), cors(origins=["https://app.example"], credentials=True)]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ocsi
from ocsi import (
    DO_NOTHING,
    BytesBody,
    Element,
    Found,
    Headers,
    ParseContext,
    Response,
    Serve,
    Step,
    error_response,
    parse_int,
)

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

__all__ = ["Cors", "cors"]

log = logging.getLogger("ocsi.ext.cors")


class Origins:
    """Which ``Origin`` values are allowed: all (Ocsigen's behaviour), or a list of exact
    origins and ``*.example.org``-style patterns (the port and scheme must be written).

    A ``*`` matches any run of characters but ``/``; patterns are matched as
    :class:`ocsi.Wildcard`, in time linear in the ``Origin`` however many stars they have
    (they may come from a user's file), never as a backtracking regular expression."""

    def __init__(self, patterns: Sequence[str] | None) -> None:
        self.any = patterns is None
        self.exact: set[str] = set()
        self.wildcards: list[ocsi.Wildcard] = []
        for p in patterns or ():
            p = p.strip().rstrip("/").lower()
            if p == "*":
                self.any = True
            elif "*" in p:
                self.wildcards.append(ocsi.Wildcard(p, separator="/"))
            else:
                self.exact.add(p)

    def allows(self, origin: str) -> bool:
        o = origin.lower()
        return self.any or o in self.exact or any(w.matches(o) for w in self.wildcards)


class Cors(Step):
    def __init__(self, origins: Origins, methods: Sequence[str] | None = None,
                 credentials: bool = False, max_age: int | None = None,
                 exposed_headers: Sequence[str] = ()) -> None:
        self.origins = origins
        self.methods = {m.upper() for m in methods} if methods else None
        self.credentials = credentials
        self.max_age = max_age
        self.exposed = ", ".join(exposed_headers)

    def _headers(self, request: Request, origin: str, preflight: bool) -> list[tuple[str, str]]:
        out = [("access-control-allow-origin", origin)]
        if self.credentials:
            out.append(("access-control-allow-credentials", "true"))
        method = request.headers.get("access-control-request-method")
        if method is not None:
            out.append(("access-control-allow-methods", method))
        requested = request.headers.get("access-control-request-headers")
        if requested is not None:
            out.append(("access-control-allow-headers", requested))
        if self.max_age is not None and preflight:
            out.append(("access-control-max-age", str(self.max_age)))
        if self.exposed and not preflight:
            out.append(("access-control-expose-headers", self.exposed))
        return out

    def _method_allowed(self, request: Request) -> bool:
        method = request.headers.get("access-control-request-method")
        return method is None or self.methods is None or method.strip().upper() in self.methods

    async def handle(self, request: Request, state: State) -> Answer:
        origin = request.headers.get("origin")
        preflight = (origin is not None and request.method == "OPTIONS"
                     and request.headers.get("access-control-request-method") is not None)
        allowed = origin is not None and self.origins.allows(origin) and self._method_allowed(request)
        if isinstance(state, Found):
            if preflight:
                return await self._answer_found_preflight(request, state, origin, allowed)
            _vary(state.response.headers)  # the answer depends on Origin, sent or not
            if origin is not None and allowed:
                headers = state.response.headers
                for name, value in self._headers(request, origin, preflight=False):
                    headers.remove(name)
                    headers.add(name, value)
            return DO_NOTHING  # a refusal is the absence of the headers, never an error
        if preflight and origin is not None:
            if not allowed:
                log.info("CORS preflight from %s for %s refused", origin, request.target)
                return DO_NOTHING  # the following steps (usually a 404) answer
            return Serve(self._preflight_response(request, origin))
        return DO_NOTHING

    def _preflight_response(self, request: Request, origin: str) -> Response:
        headers = Headers(self._headers(request, origin, preflight=True))
        _vary(headers)
        return Response(200, headers, BytesBody(b""))

    async def _answer_found_preflight(self, request: Request, state: Found, origin: str | None,
                                      allowed: bool) -> Answer:
        """A preflight that an earlier step answered (staticmod's 405 to ``OPTIONS``, a
        redirect, an application's own answer): the browser only proceeds on a 2xx carrying
        the CORS headers, and the preflight is this step's to decide. Accepted, it becomes
        the empty 200 a preflight gets anywhere else; refused, it must never look accepted,
        so the earlier answer loses its ``Access-Control-Allow-*`` fields, and a 2xx becomes
        a 403."""
        response = state.response
        if allowed and origin is not None:
            await response.body.aclose()
            return Serve(self._preflight_response(request, origin))
        log.info("CORS preflight from %s for %s refused", origin, request.target)
        for name in {n for n, _ in response.headers if n.startswith("access-control-")}:
            response.headers.remove(name)
        _vary(response.headers)
        if 200 <= response.status < 300:
            await response.body.aclose()
            refusal = error_response(403)
            _vary(refusal.headers)
            return Serve(refusal)
        return DO_NOTHING


def _vary(headers: Headers) -> None:
    values = [v.strip().lower() for value in headers.get_all("vary") for v in value.split(",")]
    if "origin" not in values and "*" not in values:
        headers.add("vary", "Origin")


def cors(*, origins: Sequence[str] | None = None, methods: Sequence[str] | None = None,
         credentials: bool = False, max_age: int | None = None,
         exposed_headers: Sequence[str] = ()) -> Cors:
    """The step ``<cors>`` builds; ``origins=None`` allows every origin, as Ocsigen does."""
    allowed = Origins(origins)
    if credentials and origins is not None and allowed.any:
        raise ValueError('credentials="true" cannot be combined with the wildcard origin "*": '
                         "list the origins allowed to send credentials")
    if max_age is not None and max_age < 0:
        raise ValueError("max_age must be 0 or more seconds")
    return Cors(allowed, methods, credentials, max_age, exposed_headers)


def _list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [p.strip() for p in re.split(r"[,\s]+", text) if p.strip()]


def _bool(el: Element, name: str) -> bool:
    value = el.get(name)
    if value is None:
        return False
    if value.strip() not in ("true", "false"):
        raise el.error(f"attribute {name} of <cors> must be true or false, not {value!r}")
    return value.strip() == "true"


@ocsi.documents(ocsi.ElementDoc(
    "cors", "answers CORS preflights and adds Access-Control-* headers to what the steps before "
    "it found; place it after them",
    attributes=[
        ocsi.AttributeDoc("origins", "allowed origins, separated by spaces or commas: exact "
                          "scheme://host[:port] or patterns such as https://*.example.org", "every origin"),
        ocsi.AttributeDoc("credentials", "true: send Access-Control-Allow-Credentials: true", "`false`"),
        ocsi.AttributeDoc("methods", "the methods a preflight may ask for", "any"),
        ocsi.AttributeDoc("max_age", "Access-Control-Max-Age of preflight answers, in seconds", "none"),
        ocsi.AttributeDoc("exposed_headers", "Access-Control-Expose-Headers on ordinary answers", "none"),
    ]))
def parse_cors(el: Element, ctx: ParseContext) -> Step:
    el.check(attributes=["max_age", "credentials", "exposed_headers", "methods", "origins"])
    credentials = _bool(el, "credentials")
    origins = _list(el.get("origins"))
    if credentials and origins is None:
        log.warning("%s: <cors credentials=\"true\"> without origins= lets every site read "
                    "credentialed answers (as Ocsigen does); list the origins allowed", el.where)
    try:
        return cors(origins=origins, methods=_list(el.get("methods")), credentials=credentials,
                    max_age=el.attr_value("max_age", parse_int, None) if el.has("max_age") else None,
                    exposed_headers=_list(el.get("exposed_headers")) or ())
    except ValueError as exc:
        raise el.error(str(exc)) from None


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"cors": parse_cors}
