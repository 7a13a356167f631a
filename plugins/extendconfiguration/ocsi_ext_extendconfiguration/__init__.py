"""ocsi-ext-extendconfiguration: per-scope settings for the steps that follow.

``<followsymlinks>``, ``<listdirs>``, ``<defaultindex>``, ``<hidefile>``, ``<forbidfile>``,
``<charset>``, ``<contenttype>``, ``<uploaddir>``, ``<maxuploadfilesize>`` inside a ``<host>`` or
``<site>`` change ``request.config`` (:class:`ocsi.SiteConfig`) for the following elements of
that scope. See README.md. Python constructors: :func:`listdirs`, :func:`followsymlinks`, …
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import ocsi

from .parse import PARSERS
from .steps import (
    Extend,
    charset,
    contenttype,
    defaultindex,
    extend,
    followsymlinks,
    forbidfile,
    hidefile,
    listdirs,
    maxuploadfilesize,
    uploaddir,
)

__all__ = ["Extend", "charset", "contenttype", "defaultindex", "extend", "followsymlinks",
           "forbidfile", "hidefile", "listdirs", "maxuploadfilesize", "uploaddir"]


def _located(parser: Callable[[ocsi.Element, ocsi.ParseContext], Extend]
             ) -> Callable[[ocsi.Element, ocsi.ParseContext], Extend]:
    @functools.wraps(parser)  # keeps the element's description (ocsi.documents)
    def parse(el: ocsi.Element, ctx: ocsi.ParseContext) -> Extend:
        step = parser(el, ctx)
        step.where = el.where
        return step

    return parse


@ocsi.hookimpl
def ocsi_elements() -> Mapping[str, Any]:
    return {tag: _located(p) for tag, p in PARSERS.items()}
