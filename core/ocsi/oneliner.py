"""One-line commands (``ocsi serve DIR``, ``ocsi proxy --to URL``, ``ocsi app MODULE:APP``):
the ``<ocsigen>`` document each one runs, and the command-line options they share.

Every one-liner listens the same way: ``--host``/``--port`` as uvicorn has them (``-P`` and
``--bind``, the older spellings, are aliases), on :data:`DEFAULT_HOST`:data:`DEFAULT_PORT`
unless told otherwise. ``127.0.0.1`` because a command typed to try something out should not
publish a directory or an application to the network; ``--host 0.0.0.0`` (or ``::``) exposes it.

Nobody wrote the generated document, so a message located in it (``<serve>:3``) would point
nowhere. Each line of the document remembers what the user typed that produced it (``--port
8080``, ``DIR www``); errors and warnings located on that line name it instead.

Private: not part of the extension API.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

from ._config.xml import describe_lines
from ._http.hostport import join_host_port

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "OneLiner", "listen_arguments"]

#: Where a one-liner listens unless ``--host``/``--port`` say otherwise (every one-liner alike).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return port


def _host(text: str) -> str:
    """An address as ``<port>`` takes it; a name (``localhost``) is resolved to its first
    address, IPv4 first, as a socket bound to a name would be."""
    host = text.strip().strip("[]")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an address nor a name that "
                                         f"resolves ({exc})") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def listen_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every one-liner takes: ``--host``/``--bind``, ``--port``/``-P``, ``-v``.

    Left unset (``None``) when not given, so that :meth:`OneLiner.from_arguments` can tell
    the defaults from what was typed.
    """
    parser.add_argument("--host", "--bind", dest="host", type=_host, metavar="ADDRESS",
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
                             "0.0.0.0 or :: for every interface)")
    parser.add_argument("--port", "-P", dest="port", type=_port, metavar="PORT",
                        help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v warnings, -vv info, -vvv debug")


class OneLiner:
    """The ``<ocsigen>`` document of a one-line command, built piece by piece, and its run.

    ``command`` names it in messages (``ocsi serve``). ``origin`` says what the user typed
    that chose the listening address (``--port 9000``). Each later piece takes the ``origin``
    of its own line: a configuration error or warning located there names it.
    """

    def __init__(self, command: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                 origin: str | None = None) -> None:
        self.command = command
        self.host = host
        self.port = port
        self.listen_origin = origin or f"--host {host} --port {port}"
        self.commandpipe: str | None = None
        self._server: list[tuple[str, str]] = []
        self._extensions: list[tuple[str, str]] = []
        self._steps: list[tuple[str, str]] = []

    @classmethod
    def from_arguments(cls, command: str, args: argparse.Namespace) -> OneLiner:
        """The listening address from the options of :func:`listen_arguments`."""
        host = args.host if args.host is not None else DEFAULT_HOST
        port = args.port if args.port is not None else DEFAULT_PORT
        typed = [f"--host {host}"] if args.host is not None else []
        typed += [f"--port {port}"] if args.port is not None else []
        origin = " ".join(typed) if typed else f"the default --host {host} --port {port}"
        return cls(command, host.strip("[]"), port, origin=origin)

    # -- pieces --------------------------------------------------------------------------------
    def findlib(self, path: str, origin: str) -> None:
        """``<findlib path>``: where modules (an application's) are looked for."""
        self._server.append((f"<findlib path={quoteattr(os.path.abspath(path))}/>", origin))

    def extension(self, distribution: str, origin: str, options: str = "") -> None:
        """``<extension findlib-package>``, with ``options`` (XML) inside; once per name."""
        if any(f'"{distribution}"' in xml for xml, _ in self._extensions):
            return
        inner = f">{options}</extension>" if options else "/>"
        self._extensions.append((f"<extension findlib-package={quoteattr(distribution)}{inner}",
                                 origin))

    def step(self, tag: str, attributes: Mapping[str, str] | None = None, *, origin: str,
             inner: str = "") -> None:
        """One element of the host, in order: ``tag`` with ``attributes`` (escaped here) and
        ``inner`` XML (its children, already written)."""
        attrs = "".join(f" {name}={quoteattr(value)}" for name, value in (attributes or {}).items())
        self._steps.append((f"<{tag}{attrs}/>" if not inner else f"<{tag}{attrs}>{inner}</{tag}>",
                            origin))

    # -- the document --------------------------------------------------------------------------
    def lines(self) -> list[tuple[str, str | None]]:
        """``(xml, origin)`` of every line of the document, one element a line."""
        out: list[tuple[str, str | None]] = [("<ocsigen>", None), ("  <server>", None)]
        out.append((f"    <port>{escape(join_host_port(self.host, self.port))}</port>",
                    self.listen_origin))
        if self.commandpipe:
            out.append((f"    <commandpipe>{escape(self.commandpipe)}</commandpipe>", None))
        out += [("    " + xml, origin) for xml, origin in self._server + self._extensions]
        out.append(('    <host hostfilter="*">', None))
        out += [("      " + xml, origin) for xml, origin in self._steps]
        out += [("    </host>", None), ("  </server>", None), ("</ocsigen>", None)]
        return out

    def document(self) -> str:
        """The whole ``<ocsigen>`` document, as text."""
        return "\n".join(xml for xml, _ in self.lines()) + "\n"

    def origins(self) -> dict[int, str]:
        """Line number (from 1) → what the user typed that wrote it."""
        return {n: origin for n, (_, origin) in enumerate(self.lines(), 1) if origin}

    def run(self, *, watch: bool = False, verbosity: int = 0) -> int:
        """Serve the document until stopped (logs on the terminal); the exit code."""
        from .apps import run_document

        describe_lines(self.command, self.origins())
        return run_document(self.document(), watch=watch, verbosity=verbosity, name=self.command)

