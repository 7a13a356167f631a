"""ocsi-ext-outputfilter: Ocsigen's outputfilter for ocsi (``<outputfilter>``, ``<sethttpcode>``).

Placed after the step that produces a page; see README.md. From Python::

    from ocsi_ext_outputfilter import outputfilter, sethttpcode
    steps = [revproxy(...), outputfilter("location", r"http://\\1/", regexp="http://backend:8080/(.*)")]
"""

from __future__ import annotations

import ocsi

from .filters import (
    AddHeader,
    RewriteHeader,
    SetCode,
    outputfilter,
    parse_outputfilter,
    parse_sethttpcode,
    sethttpcode,
)


@ocsi.hookimpl
def ocsi_elements() -> dict[str, ocsi.ElementParser]:
    return {"outputfilter": parse_outputfilter, "sethttpcode": parse_sethttpcode}


__all__ = ["AddHeader", "RewriteHeader", "SetCode", "outputfilter",
           "parse_outputfilter", "parse_sethttpcode", "sethttpcode"]
