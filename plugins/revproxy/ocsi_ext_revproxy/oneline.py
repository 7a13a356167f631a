"""``ocsi proxy --to http://127.0.0.1:9000``: a proxy in front of one or more backends with no
configuration file, as ``caddy reverse-proxy`` does in one line (an ``ocsi.cli`` command).

It listens where every one-liner does (``127.0.0.1:8080``; ``--host``/``--port``, or the older
``--from [ADDR]:PORT``) and, unlike a bare ``<revproxy>``, behaves as a front for an
application should by default: redirects the backend makes to its own address are sent back
to the client's (``rewritelocation``), and a chunked request body reaches the backend with a
``Content-Length`` (``requestbuffer``), which every backend can read.
"""

from __future__ import annotations

import argparse
import sys

from ocsi.apps import OneLiner, listen_arguments
from ocsi.httputil import split_host_port

from .destination import DestinationError, parse_destination

#: A chunked request body is buffered up to this size by ``ocsi proxy`` (``--request-buffer``).
DEFAULT_REQUEST_BUFFER = "8MB"


def listen_address(text: str) -> tuple[str, int]:
    """``--from``: ``:8080`` → ``("", 8080)``; ``127.0.0.1:8080``, ``[::1]:8080``; ValueError
    otherwise. An empty host (or ``*``) is every interface."""
    host, port = split_host_port(text.strip())
    if port is None and host.isdigit():
        host, port = "", host
    if port is None or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--from {text!r} is not [ADDRESS]:PORT")
    host = host.strip("[]")
    return ("0.0.0.0" if host in ("", "*") else host), int(port)


def destination_url(target: str) -> str:
    """``127.0.0.1:9000`` → ``http://127.0.0.1:9000/``; DestinationError for what is not a URL."""
    url = target if "://" in target else "http://" + target
    if url.count("/") < 3:
        url += "/"
    parse_destination(url)
    return url


def proxy_document(targets: list[str], *, insecure: bool = False, keep_host: bool = False,
                   rewrite_location: bool = True, request_buffer: str | None = DEFAULT_REQUEST_BUFFER,
                   oneliner: OneLiner | None = None) -> OneLiner:
    """The document: every request forwarded, its path appended to each target.
    DestinationError for a target that is not an http(s) URL."""
    doc = oneliner or OneLiner("ocsi proxy")
    dests = [destination_url(t).rstrip("/") + "/\\1" for t in targets]
    attributes = {"suburl": "(.*)", "dest": " ".join(dests)}
    if insecure:
        attributes["insecure"] = "insecure"
    if keep_host:
        attributes["keephost"] = "keephost"
    if rewrite_location:
        attributes["rewritelocation"] = "rewritelocation"
    if request_buffer is not None:
        attributes["requestbuffer"] = request_buffer
    doc.extension("ocsi-ext-revproxy", origin="ocsi proxy")
    typed = [f"--to {t}" for t in targets]
    if request_buffer != DEFAULT_REQUEST_BUFFER and request_buffer is not None:
        typed.append(f"--request-buffer {request_buffer}")
    doc.step("revproxy", attributes, origin=" ".join(typed))
    return doc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ocsi proxy",
                                description="Forward every request to the backend(s), no configuration.")
    p.add_argument("--to", dest="targets", action="append", required=True, metavar="URL",
                   help="a backend (http://host:port[/prefix]); repeat for several")
    listen_arguments(p)
    p.add_argument("--from", dest="listen", metavar="[ADDR]:PORT",
                   help="where to listen, in one option (instead of --host and --port)")
    p.add_argument("--keep-host", action="store_true",
                   help="send the client's Host to the backend instead of the backend's own")
    p.add_argument("--no-rewrite-location", dest="rewrite_location", action="store_false",
                   help="pass Location and Refresh naming the backend unchanged")
    p.add_argument("--request-buffer", metavar="SIZE", default=DEFAULT_REQUEST_BUFFER,
                   help="a chunked request body is read up to SIZE and sent with a Content-Length "
                        f"(default {DEFAULT_REQUEST_BUFFER}; larger: 413); 0 forwards it chunked "
                        "(an HTTP/1.0 backend then gets 411)")
    p.add_argument("--insecure", action="store_true", help="do not verify HTTPS backends")
    return p


def main(argv: list[str] | None = None) -> int:
    """--to URL: a reverse proxy in front of URL, without configuration.

    ``ocsi proxy --to URL [--to URL…] [--host A] [--port N] [--keep-host] …``."""
    ns = parser().parse_args(argv)
    try:
        if ns.listen is not None:
            if ns.host is not None or ns.port is not None:
                raise ValueError("--from says where to listen already: give it, or --host/--port")
            host, port = listen_address(ns.listen)
            oneliner = OneLiner("ocsi proxy", host, port, origin=f"--from {ns.listen}")
        else:
            oneliner = OneLiner.from_arguments("ocsi proxy", ns)
        doc = proxy_document(ns.targets, insecure=ns.insecure, keep_host=ns.keep_host,
                             rewrite_location=ns.rewrite_location, request_buffer=ns.request_buffer,
                             oneliner=oneliner)
    except (ValueError, DestinationError) as exc:
        print(f"ocsi proxy: {exc}", file=sys.stderr)
        return 2
    return doc.run(verbosity=ns.verbose)



__all__ = ["DEFAULT_REQUEST_BUFFER", "destination_url", "listen_address", "main", "proxy_document"]
