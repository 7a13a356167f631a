"""``ocsi proxy --from :8080 --to http://127.0.0.1:9000``: the whole configuration for a proxy
in front of one or more backends, as ``caddy reverse-proxy`` does in one line."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ocsi import join_host_port, split_host_port

from .destination import parse_destination


def listen_address(text: str) -> str:
    """``:8080`` → ``8080``; ``127.0.0.1:8080``, ``[::1]:8080`` kept; ValueError otherwise."""
    host, port = split_host_port(text.strip())
    if port is None and host.isdigit():
        host, port = "", host
    if port is None or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not [ADDRESS]:PORT")
    return port if host in ("", "*") else join_host_port(host.strip("[]"), port)


def proxy_config(listen: str, targets: list[str], *, insecure: bool = False,
                 commandpipe: str | None = None) -> str:
    """The ``<ocsigen>`` document: every request forwarded, its path appended to each target."""
    dests = []
    for target in targets:
        url = target if "://" in target else "http://" + target
        if url.count("/") < 3:
            url += "/"
        parse_destination(url)  # ValueError (DestinationError) for what is not a URL
        dests.append(url.rstrip("/") + "/\\1")
    attrs = f"suburl={quoteattr('(.*)')} dest={quoteattr(' '.join(dests))}"
    if insecure:
        attrs += ' insecure="insecure"'
    lines = ["<ocsigen>", "  <server>", f"    <port>{escape(listen_address(listen))}</port>"]
    if commandpipe:
        lines.append(f"    <commandpipe>{escape(commandpipe)}</commandpipe>")
    lines += ['    <extension findlib-package="ocsi-ext-revproxy"/>',
              '    <host hostfilter="*">', f"      <revproxy {attrs}/>", "    </host>",
              "  </server>", "</ocsigen>", ""]
    return "\n".join(lines)
