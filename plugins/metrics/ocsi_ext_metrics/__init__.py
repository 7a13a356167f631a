"""ocsi-ext-metrics: ``<metrics/>``, the server's counters for Prometheus. See README.md.

The element answers at the root of the site it is written in, so it is guarded like any page
(accesscontrol, authbasic before it)::

    <site path="_metrics"><metrics/></site>

From Python::

    from ocsi_ext_metrics import metrics
    steps = [site(("_metrics",), [metrics()])]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ocsi
from ocsi import (DO_NOTHING, BytesBody, Element, Found, Headers, ParseContext, Response, Serve,
                  Step, error_response)

from .exposition import render

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

__all__ = ["Metrics", "metrics", "render"]

#: What the exposition may be asked with.
METHODS = ("GET", "HEAD")


class Metrics(Step):
    """Answers ``GET``/``HEAD`` of its site's root with the exposition of every worker's
    counters; another method gets 405; a deeper path is left to the steps that follow."""

    def __init__(self, where: str = "<python>") -> None:
        self.where = where
        # from now on the workers publish their counters for one another's scrapes
        ocsi.STATS.exported = True

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found) or request.sub_path != ("",):
            return DO_NOTHING
        if request.method not in METHODS:
            refused = error_response(405)
            refused.headers.add("allow", ", ".join(METHODS))
            return Serve(refused)
        body, content_type = render(ocsi.STATS.gather(), request.headers.get("accept"))
        return Serve(Response(200, Headers([("content-type", content_type),
                                            ("cache-control", "no-store")]), BytesBody(body)))


def metrics() -> Metrics:
    """The step ``<metrics/>`` builds."""
    return Metrics()


@ocsi.documents(ocsi.ElementDoc(
    "metrics", "answers the root of its site with the server's counters (every worker's) in "
    "Prometheus's text format, or OpenMetrics when Accept asks for it; guard it like any page"))
def parse_metrics(el: Element, ctx: ParseContext) -> Step:
    el.check()
    return Metrics(el.where)


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"metrics": parse_metrics}
