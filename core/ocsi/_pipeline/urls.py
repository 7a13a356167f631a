"""Absolute URLs for redirects (trailing-slash redirects of sites and directories).

Private: not part of the extension API.
"""

from __future__ import annotations

from .._http.headers import Headers
from .._http.hostport import split_host_port
from .._http.request import Request
from .._http.response import Response


def absolute_url(request: Request, path: str) -> str:
    """``scheme://authority`` + ``path`` (already encoded, with its leading ``/``).

    The authority is the ``Host`` header as the client sent it: with its port when it has one
    (which Ocsigen drops), else with the port the request came in on unless it is the scheme's
    own, as Ocsigen and nginx do (``Host: localhost`` on port 8080 →
    ``http://localhost:8080/``). A ``defaulthttpport``/``defaulthttpsport`` written on the
    host replaces that listening port (a proxy in front listens elsewhere). With
    ``<usedefaulthostname/>``, or no ``Host``, the host's ``defaulthostname`` and default port
    are used.
    """
    config = request.config
    scheme = request.scheme
    if request.host_header and not config.use_default_hostname:
        name, given = split_host_port(request.host_header)
        if given is not None:
            authority = request.host_header
        else:
            if scheme == "https":
                port = config.default_httpsport if config.httpsport_given else request.port
                usual = 443
            else:
                port = config.default_httpport if config.httpport_given else request.port
                usual = 80
            authority = name if port == usual else f"{name}:{port}"
    else:
        if scheme == "https":
            port, usual = config.default_httpsport, 443
        else:
            port, usual = config.default_httpport, 80
        authority = config.default_hostname if port == usual else f"{config.default_hostname}:{port}"
    return f"{scheme}://{authority}{path}"


def url_subject(request: Request, full: bool) -> str | None:
    """What Ocsigen's ``suburl``/``fullurl`` regular expressions are matched against.

    ``full=False``: the path below the current site, without its leading ``/``, with
    ``?query`` when there is one, percent-encoded as the client sent it. ``full=True``:
    ``scheme://host[:port]/path[?query]`` from the ``Host`` the client sent (``None``
    without one: not concerned).
    """
    query = "" if request.query is None else "?" + request.query
    if not full:
        return request.raw_sub_path + query
    if not request.host_header:
        return None
    return f"{request.scheme}://{request.host_header}{request.path}{query}"


def slash_redirect(request: Request, raw_segments: tuple[str, ...]) -> Response:
    """301 to the same URL with a trailing ``/`` (query kept), as Ocsigen does for directories."""
    path = "/" + "/".join(raw_segments) + "/"
    if request.query is not None:
        path += "?" + request.query
    return Response(301, Headers([("location", absolute_url(request, path))]))
