"""``ocsi app package.module:app [--port N] [--reload]``: serve one application with no
configuration file, as ``uvicorn module:app`` does (an ``ocsi.cli`` command)."""

from __future__ import annotations

import argparse
import os
import sys
from xml.sax.saxutils import escape, quoteattr

from ocsi import join_host_port, run_document

from .application import AppError, is_asgi3, load_app


def app_config(spec: str, *, host: str, port: int, wsgi: bool | None, factory: bool,
               path: str) -> str:
    """The document; ``wsgi=None`` decides by looking at the application."""
    if wsgi is None:
        if path not in sys.path:
            sys.path.insert(0, path)
        wsgi = not is_asgi3(load_app(spec, factory, fresh=False))
    element = "wsgi" if wsgi else "asgi"
    attrs = f"app={quoteattr(spec)}" + (' factory="true"' if factory else "")
    return "\n".join([
        "<ocsigen>", "  <server>", f"    <port>{escape(join_host_port(host, port))}</port>",
        f"    <findlib path={quoteattr(path)}/>",
        '    <extension findlib-package="ocsi-ext-asgi"/>',
        '    <host hostfilter="*">', f"      <{element} {attrs}/>", "    </host>",
        "  </server>", "</ocsigen>", ""])


def main(argv: list[str] | None = None) -> int:
    """MODULE:APP: serve an ASGI or WSGI application without configuration (as uvicorn does)."""
    p = argparse.ArgumentParser(prog="ocsi app",
                                description="Serve an ASGI or WSGI application, no configuration.")
    p.add_argument("app", metavar="MODULE:APP", help="e.g. myproject.asgi:application")
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--reload", action="store_true", help="serve edited code (watchdog)")
    p.add_argument("--factory", action="store_true", help="APP is a factory to call")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--wsgi", dest="wsgi", action="store_const", const=True, default=None)
    kind.add_argument("--asgi", dest="wsgi", action="store_const", const=False)
    p.add_argument("--app-dir", default=os.getcwd(), help="where the module is (default: here)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    ns = p.parse_args(argv)
    try:
        xml = app_config(ns.app, host=ns.host, port=ns.port, wsgi=ns.wsgi, factory=ns.factory,
                         path=os.path.abspath(ns.app_dir))
    except AppError as exc:
        print(f"ocsi: {exc}", file=sys.stderr)
        return 2
    return run_document(xml, watch=ns.reload, verbosity=ns.verbose, name="<app>")
