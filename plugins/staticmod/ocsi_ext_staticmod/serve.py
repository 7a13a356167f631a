"""``ocsi serve DIR``: a directory served with no configuration file (an ``ocsi.cli`` command).

Ocsigen's serve mode (spec §1.3) with the defaults people expect of ``python -m http.server``
and Caddy's ``file-server --browse``, and none of their risks:

- it listens where every one-liner does (``127.0.0.1:8080``, ``--host``/``--port``);
- directories without an index are listed (sizes, dates, a link to the parent);
  ``--no-listing`` turns that off;
- dotfiles and dot-directories (``.git/``, ``.env``) do not exist for the client (404, left out
  of listings) unless ``--show-hidden``: a project directory served in a hurry keeps its
  secrets;
- text is compressed as the sample configuration does (``ocsi-ext-deflatemod``, when installed);
  ``--no-compress`` turns that off.

Listings and hiding come from ``ocsi-ext-extendconfiguration`` (``<listdirs>``, ``<hidefile>``).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata
from xml.sax.saxutils import quoteattr

from ocsi.apps import OneLiner, listen_arguments

#: A name starting with a dot, anywhere below the served directory (staticmod checks each
#: directory on the way, so ``.git/config`` is hidden as ``.git`` is).
HIDDEN = r".*/\.[^/]*"
#: What ``ocsi serve`` compresses: text, as the sample configuration's ``<deflate>``.
COMPRESSED_TYPES = ("text/*", "application/json", "application/javascript", "application/xml",
                    "application/*+json", "application/*+xml", "image/svg+xml")


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def serve_document(directory: str, *, listing: bool = True, show_hidden: bool = False,
                   compress: bool = True, oneliner: OneLiner | None = None) -> OneLiner:
    """The document serving ``directory`` (made absolute); ``oneliner`` gives the address."""
    doc = oneliner or OneLiner("ocsi serve")
    root = os.path.abspath(directory)
    doc.extension("ocsi-ext-staticmod", origin=f"ocsi serve {directory}")
    if listing or not show_hidden:
        why = "directory listings" if listing else "hiding dotfiles (--show-hidden shows them)"
        doc.extension("ocsi-ext-extendconfiguration", origin=f"ocsi serve: {why}")
    if not show_hidden:
        doc.step("hidefile", origin="ocsi serve: dotfiles are hidden (--show-hidden)",
                 inner=f"<regexp regexp={quoteattr(HIDDEN)}/>")
    if listing:
        doc.step("listdirs", {"value": "true"}, origin="ocsi serve: listing (--no-listing)")
    # --show-hidden serves every dotfile, the ones <static> protects by default included
    doc.step("static", {"dir": root, **({"protect": ""} if show_hidden else {})},
             origin=f"DIR {directory}")
    if compress:
        doc.extension("ocsi-ext-deflatemod", origin="ocsi serve: compression (--no-compress)")
        doc.step("deflate", {"compress": "only"}, origin="ocsi serve: compression (--no-compress)",
                 inner="".join(f"<type>{t}</type>" for t in COMPRESSED_TYPES))
    return doc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ocsi serve", description="Serve DIR over HTTP: no configuration, logs on the terminal.")
    p.add_argument("dir", metavar="DIR", help="the directory to serve")
    listen_arguments(p)
    p.add_argument("--no-listing", dest="listing", action="store_false",
                   help="answer 404 for a directory without an index instead of listing it")
    p.add_argument("--listing", "--directory-listing", dest="listing", action="store_true",
                   help=argparse.SUPPRESS)  # the default now; the older spelling still works
    p.add_argument("--show-hidden", action="store_true",
                   help="serve dotfiles and dot-directories (.git/, .env), hidden by default")
    p.add_argument("--no-compress", dest="compress", action="store_false",
                   help="send text uncompressed")
    p.set_defaults(listing=True)
    return p


def main(argv: list[str] | None = None) -> int:
    """DIR: serve a directory without configuration (listings, dotfiles hidden, compression).

    ``ocsi serve DIR [--host A] [--port N] [--no-listing] [--show-hidden] [--no-compress]``."""
    ns = parser().parse_args(argv)
    directory = os.path.abspath(ns.dir)
    if not os.path.exists(directory):
        print(f"ocsi serve: no such directory: {ns.dir}", file=sys.stderr)
        return 2
    if not os.path.isdir(directory):
        print(f"ocsi serve: {ns.dir} is not a directory", file=sys.stderr)
        return 2
    compress = ns.compress and _installed("ocsi-ext-deflatemod")
    doc = serve_document(ns.dir, listing=ns.listing, show_hidden=ns.show_hidden,
                         compress=compress, oneliner=OneLiner.from_arguments("ocsi serve", ns))
    return doc.run(verbosity=ns.verbose)
