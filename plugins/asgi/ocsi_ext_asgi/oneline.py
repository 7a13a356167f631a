"""``ocsi app package.module:app [--host A] [--port N] [--reload]``: serve one application with no
configuration file, as ``uvicorn module:app`` does (an ``ocsi.cli`` command), where every
one-liner listens (``127.0.0.1:8080`` by default)."""

from __future__ import annotations

import argparse
import os
import sys

from ocsi.apps import OneLiner, listen_arguments

from .application import AppError, is_asgi3, load_app


def app_document(spec: str, *, wsgi: bool | None, factory: bool, path: str,
                 oneliner: OneLiner | None = None) -> OneLiner:
    """The document; ``wsgi=None`` decides by looking at the application (AppError when it
    cannot be loaded)."""
    if wsgi is None:
        if path not in sys.path:
            sys.path.insert(0, path)
        wsgi = not is_asgi3(load_app(spec, factory, fresh=False))
    doc = oneliner or OneLiner("ocsi app")
    doc.findlib(path, origin=f"--app-dir {path}")
    doc.extension("ocsi-ext-asgi", origin="ocsi app")
    attributes = {"app": spec}
    if factory:
        attributes["factory"] = "true"
    doc.step("wsgi" if wsgi else "asgi", attributes, origin=f"ocsi app {spec}")
    return doc


def main(argv: list[str] | None = None) -> int:
    """MODULE:APP: serve an ASGI or WSGI application without configuration (as uvicorn does)."""
    p = argparse.ArgumentParser(prog="ocsi app",
                                description="Serve an ASGI or WSGI application, no configuration.")
    p.add_argument("app", metavar="MODULE:APP", help="e.g. myproject.asgi:application")
    listen_arguments(p)
    p.add_argument("--reload", action="store_true", help="serve edited code (watchdog)")
    p.add_argument("--factory", action="store_true", help="APP is a factory to call")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--wsgi", dest="wsgi", action="store_const", const=True, default=None)
    kind.add_argument("--asgi", dest="wsgi", action="store_const", const=False)
    p.add_argument("--app-dir", default=os.getcwd(), help="where the module is (default: here)")
    ns = p.parse_args(argv)
    try:
        doc = app_document(ns.app, wsgi=ns.wsgi, factory=ns.factory,
                           path=os.path.abspath(ns.app_dir),
                           oneliner=OneLiner.from_arguments("ocsi app", ns))
    except AppError as exc:
        print(f"ocsi app: {exc}", file=sys.stderr)
        return 2
    return doc.run(watch=ns.reload, verbosity=ns.verbose)
