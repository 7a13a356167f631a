"""Absolute URLs for redirects (trailing-slash redirects of sites and directories)."""

from __future__ import annotations

from ..http.headers import Headers
from ..http.request import Request
from ..http.response import Response


def absolute_url(request: Request, path: str) -> str:
    """``scheme://authority`` + ``path`` (already encoded, with its leading ``/``).

    The authority is the ``Host`` header as the client sent it (its port included, which
    Ocsigen drops), unless ``<usedefaulthostname/>`` is set or there is no Host, in which case
    the host's ``defaulthostname`` and default port are used.
    """
    config = request.config
    scheme = request.scheme
    if request.host_header and not config.use_default_hostname:
        authority = request.host_header
    else:
        if scheme == "https":
            port, usual = config.default_httpsport, 443
        else:
            port, usual = config.default_httpport, 80
        authority = config.default_hostname if port == usual else f"{config.default_hostname}:{port}"
    return f"{scheme}://{authority}{path}"


def slash_redirect(request: Request, raw_segments: tuple[str, ...]) -> Response:
    """301 to the same URL with a trailing ``/`` (query kept), as Ocsigen does for directories."""
    path = "/" + "/".join(raw_segments) + "/"
    if request.query is not None:
        path += "?" + request.query
    return Response(301, Headers([("location", absolute_url(request, path))]))
