"""``rewritelocation``: redirects the backend makes to its own address go back to the client's.

A backend behind a proxy builds absolute URLs from the ``Host`` it receives, which is its own
address (``http://127.0.0.1:9000/login``) unless ``keephost``. Passed on unchanged, that URL
sends the browser around the proxy, or nowhere. As nginx's ``proxy_redirect default``,
``Location`` and ``Refresh`` values that point at the destination are rewritten to the
scheme and ``Host`` the client used, and the destination's path prefix becomes the client's:
with ``<site path="app"><revproxy suburl="(.*)" dest="http://b:9000/v1/\\1"/>``, a
``Location: http://b:9000/v1/login`` becomes ``http://front.example/app/login``. Other values
(another host, a relative path outside the prefix) are left as they are.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ocsi import Request, parse_regex

from .destination import Destination

#: ``Refresh: 5; url=http://…`` (the URL optionally quoted): the backend writes it, so it is
#: matched in linear time like configuration patterns (a backtracking ``(.*?)(\s*)`` on a value
#: of spaces took seconds). Groups: the part before the URL, then the URL in double quotes, in
#: single quotes, or bare.
_REFRESH = parse_regex(r"(?i)(\s*\d+(?:\.\d*)?\s*[;,]\s*url\s*=\s*)(?:\"(.*?)\"|'(.*?)'|(.*?))\s*")


def prefixes(backend_target: str, client_target: str) -> tuple[str, str]:
    """The path prefixes that correspond: what the destination puts before the part of the
    path it shares with the client's request (``/v1`` for ``/app``), cut at a ``/``."""
    n = 0
    limit = min(len(backend_target), len(client_target))
    while n < limit and backend_target[-1 - n] == client_target[-1 - n]:
        n += 1
    suffix = backend_target[len(backend_target) - n:]
    slash = suffix.find("/")
    if slash < 0:
        return "", ""  # nothing in common but within a segment: only the origin is rewritten
    n -= slash
    return backend_target[:len(backend_target) - n], client_target[:len(client_target) - n]


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme == "https" else 80)


def rewrite_url(url: str, dest: Destination, request: Request) -> str:
    """``url`` as the client should see it (unchanged when it does not point at ``dest``)."""
    backend_prefix, client_prefix = prefixes(dest.target, request.target)
    if url.startswith("/") and not url.startswith("//"):
        rest = url  # path-absolute: the prefix alone is mapped
    else:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return url
        origin = dest.origin
        if (parts.scheme.lower() != origin.scheme or (parts.hostname or "") != origin.host
                or _port(parts.scheme.lower(), port) != origin.port):
            return url
        rest = url[url.index("//") + 2 + len(parts.netloc):] or "/"
        host = request.host_header
        if host:
            return f"{request.scheme}://{host}{_map_prefix(rest, backend_prefix, client_prefix)}"
        return _map_prefix(rest, backend_prefix, client_prefix)  # no Host: a relative reference
    return _map_prefix(rest, backend_prefix, client_prefix)


def _map_prefix(path: str, backend_prefix: str, client_prefix: str) -> str:
    if backend_prefix == client_prefix:
        return path
    if path == backend_prefix or path.startswith(backend_prefix + "/") or (
            path.startswith(backend_prefix) and path[len(backend_prefix):][:1] in ("?", "#")):
        return client_prefix + path[len(backend_prefix):] or "/"
    return path


def rewrite_redirects(fields: list[tuple[str, str]], dest: Destination,
                      request: Request) -> list[tuple[str, str]]:
    """The response fields with ``Location`` and ``Refresh`` rewritten (names lower-case)."""
    out = []
    for name, value in fields:
        if name == "location":
            value = rewrite_url(value.strip(), dest, request)
        elif name == "refresh":
            m = _REFRESH.fullmatch(value)
            if m is not None:
                double, single, bare = m.group(2), m.group(3), m.group(4)
                quote = '"' if double is not None else "'" if single is not None else ""
                url = rewrite_url((double or single or bare or "").strip(), dest, request)
                value = f"{m.group(1)}{quote}{url}{quote}"
        out.append((name, value))
    return out
