"""The configuration of the one-line serve mode (``ocsi serve DIR [--port N] [--listing]``).

Ocsigen's serve mode (spec §1.3): HTTP only on the port, one host matching any name, one
``<static dir=…>`` on the absolute directory, index ``index.html``, listing only when asked
(that needs ``ocsi-ext-extendconfiguration``), symlink policy owner-match, no log directory
(logs go to the terminal). Ocsigen listens on ``0.0.0.0``; by default ocsi listens on every
IPv4 and IPv6 interface (``bind`` chooses one address).
"""

from __future__ import annotations

import os
from xml.sax.saxutils import escape, quoteattr

from ocsi import join_host_port


def serve_config(directory: str, port: int, listing: bool, bind: str | None = None, *,
                 commandpipe: str | None = None) -> str:
    """The whole ``<ocsigen>`` document serving ``directory`` (made absolute) on ``port``.

    ``bind``: ``None`` for every interface, ``"0.0.0.0"`` as Ocsigen, ``"::1"``… (IPv6
    addresses are bracketed). ``commandpipe`` adds a ``<commandpipe>`` element.
    """
    root = os.path.abspath(directory)
    port = int(port)
    listen = str(port) if bind is None or bind in ("", "*") else join_host_port(bind, port)
    lines = ["<ocsigen>", "  <server>", f"    <port>{escape(listen)}</port>"]
    if commandpipe:
        lines.append(f"    <commandpipe>{escape(commandpipe)}</commandpipe>")
    lines.append('    <extension findlib-package="ocsi-ext-staticmod"/>')
    if listing:
        lines.append('    <extension findlib-package="ocsi-ext-extendconfiguration"/>')
    lines.append('    <host hostfilter="*">')
    if listing:
        lines.append('      <listdirs value="true"/>')
    lines.append(f"      <static dir={quoteattr(root)}/>")
    lines += ["    </host>", "  </server>", "</ocsigen>", ""]
    return "\n".join(lines)
