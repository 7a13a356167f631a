"""``host:port`` text, split and joined one way everywhere (Host headers, hostfilters, binds).

IPv6 literals keep their brackets when split (``[::1]:80`` → ``("[::1]", "80")``), so a host
name never loses the mark that tells it from a name; a bare IPv6 address (several colons, no
brackets) is all host.

Private: not part of the extension API.
"""

from __future__ import annotations


def split_host_port(text: str) -> tuple[str, str | None]:
    """``host[:port]`` → ``(host, port)``, the port as written (``None`` when absent)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return text, None
        rest = text[end + 1:]
        return text[: end + 1], (rest[1:] if rest.startswith(":") else None)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def join_host_port(host: str, port: int | str | None) -> str:
    """The inverse: an IPv6 address is bracketed, a missing port is left out."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"

