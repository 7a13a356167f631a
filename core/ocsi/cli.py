"""Command line: ``ocsi [-c FILE] [options]``, ``ocsi serve DIR``, ``ocsi extensions``.

Exit codes follow Ocsigen's classes (spec §1.5): 2 usage, 9 system error (bind…), 10 wrong
TLS key password, 50 configuration error, 51 XML syntax error, 52 extension load failure,
53 extension not installed, 100 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import __version__
from .config.errors import ConfigError
from .extensions.loader import Catalog, new_plugin_manager
from .runtime import build_configuration

#: Commands of the built-in extensions (``ocsi.cli`` entry points), named when not installed.
PROVIDED_BY = {"serve": "ocsi-ext-staticmod", "proxy": "ocsi-ext-revproxy", "app": "ocsi-ext-asgi"}
DEFAULT_CONFIG = os.environ.get("OCSI_CONFIG", "/etc/ocsi/ocsi.conf")
EXIT_USAGE, EXIT_SYSTEM, EXIT_OTHER = 2, 9, 100


def _main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ocsi",
        description="A web server configured like Ocsigen Server.",
        epilog="Other commands: 'ocsi serve DIR' serves a directory without configuration; "
               "'ocsi extensions' lists installed extensions; 'ocsi new-extension NAME' "
               "writes a ready extension distribution; 'ocsi proxy --to URL' forwards "
               "everything to a backend; 'ocsi cert dev [NAMES]' makes a local CA and a "
               "certificate for development; extensions add more (authbasic: 'ocsi hash-password').",
    )
    p.add_argument("-c", "--config", metavar="FILE",
                   help=f"configuration file (default {DEFAULT_CONFIG}, or $OCSI_CONFIG)")
    p.add_argument("-s", "--silent", action="store_true", help="nothing on stdout/stderr")
    p.add_argument("-p", "--pidfile", metavar="FILE", help="write the process id there")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="-v warnings, -vv info, -vvv debug (extensions included)")
    p.add_argument("-vv", "--veryverbose", action="store_const", const=2, dest="verbose_level")
    p.add_argument("-vvv", "--debug", action="store_const", const=3, dest="verbose_level")
    p.add_argument("-d", "--daemon", action="store_true", help="detach (implies --silent)")
    p.add_argument("--check", action="store_true", help="validate the configuration and exit")
    p.add_argument("-w", "--watch", action="store_true",
                   help="reload when a configuration file, <extconf> file or <library> changes")
    p.add_argument("--workers", metavar="N", type=_workers_arg,
                   help="worker processes (overrides <workers>; auto: one per CPU)")
    p.add_argument("--version", action="version", version=f"ocsi {__version__}")
    # Ocsigen's one-command serve mode: `ocsi DIR` / `ocsi --serve DIR --port N`.
    p.add_argument("dir", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--serve", metavar="DIR", help="serve DIR without configuration")
    p.add_argument("-P", "--port", type=int, help="port for serve mode (default 8080, on 127.0.0.1)")
    p.add_argument("--directory-listing", action="store_true", help="serve mode: list directories")
    return p


def _workers_arg(text: str) -> int:
    from .config.directives import parse_workers
    from .config.values import ValueFormatError

    try:
        return parse_workers(text)
    except ValueFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fail(message: str, code: int) -> int:
    print(f"ocsi: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "extensions":
        return _extensions()
    if argv and argv[0] == "new-extension":
        return _new_extension(argv[1:])
    if argv and argv[0] == "cert":
        from .devcert import cert_command

        return cert_command(argv[1:])
    if argv and not argv[0].startswith("-"):
        command = _extension_command(argv[0])
        if command is not None:
            return int(command(argv[1:]) or 0)
        if argv[0] in PROVIDED_BY:
            return _fail(f"'ocsi {argv[0]}' comes with {PROVIDED_BY[argv[0]]}: "
                         f"pip install {PROVIDED_BY[argv[0]]}", EXIT_USAGE)
    try:
        args = _main_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    verbosity = args.verbose_level or args.verbose
    serve_dir = args.serve or args.dir
    if serve_dir is not None:
        if args.serve and args.dir and os.path.abspath(args.serve) != os.path.abspath(args.dir):
            return _fail("only one directory to serve can be given", EXIT_USAGE)
        if args.config:
            return _fail("-c/--config cannot be combined with serve mode", EXIT_USAGE)
        return _serve_ocsigen_form(serve_dir, args.port, args.directory_listing, verbosity)
    if args.port is not None or args.directory_listing:
        return _fail("--port and --directory-listing require a directory to serve", EXIT_USAGE)
    path = args.config or DEFAULT_CONFIG
    if not os.path.exists(path):
        hint = "" if args.config else " (give one with -c FILE, or serve a directory with 'ocsi serve DIR')"
        return _fail(f"configuration file {path} not found{hint}", 50)
    if args.check:
        return _check(path)
    if args.daemon:
        code = _check(path, quiet=True)
        if code:
            return code
        pid = os.fork()
        if pid:
            print(f"Process {pid} detached")
            if args.pidfile:
                _write_pid(args.pidfile, pid)
            return 0
        os.setsid()
        args.silent = True
        # Detach from the terminal (and from any pipe the caller reads to its end).
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
    elif args.pidfile:
        _write_pid(args.pidfile, os.getpid())
    from .workers import configured_workers, run_master

    workers = args.workers or configured_workers(path)
    if workers > 1:
        if args.watch and not args.silent:
            print("ocsi: --watch is ignored with worker processes; use the command pipe's reload",
                  file=sys.stderr)
        return run_master(path, workers, silent=args.silent, verbosity=verbosity)
    from .run import run_server

    return run_server(path, None, silent=args.silent, verbosity=verbosity, watch=args.watch)


def _write_pid(path: str, pid: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as f:
        f.write(f"{pid}\n")


def _check(path: str, quiet: bool = False) -> int:
    """``--check``: the configuration built as at start, and the ``<ssl>`` files read (host
    certificates are read while building)."""
    from .tls import check_server_pair

    try:
        config = build_configuration(new_plugin_manager(), path)
        ssl = config.settings.ssl
        note = check_server_pair(ssl) if ssl is not None and ssl.certificate else None
    except ConfigError as exc:
        print(f"ocsi: {exc}", file=sys.stderr)
        return exc.exit_code
    if note and not quiet:
        print(f"{path}: {note}")
    if not quiet:
        exts = ", ".join(config.extensions.names) or "none"
        print(f"{path}: configuration OK ({len(config.hosts)} host(s); extensions: {exts})")
    return 0


def _extension_command(name: str) -> Any:
    """``ocsi NAME …`` given by an installed extension: an entry point in the group
    ``ocsi.cli`` (authbasic's ``hash-password``), loaded only when asked for."""
    from .extensions.loader import metadata

    for ep in metadata.entry_points(group="ocsi.cli"):
        if ep.name == name:
            return ep.load()
    return None


def _serve_ocsigen_form(directory: str, port: int | None, listing: bool, verbosity: int) -> int:
    """Ocsigen's ``ocsi DIR`` / ``ocsi --serve DIR --port N [--directory-listing]``: the
    ``serve`` command, with Ocsigen's listing default (off unless asked for)."""
    command = _extension_command("serve")
    if command is None:
        return _fail(f"serve mode comes with {PROVIDED_BY['serve']}: pip install "
                     f"{PROVIDED_BY['serve']}", EXIT_USAGE)
    argv = [directory, *(["--port", str(port)] if port is not None else []),
            *([] if listing else ["--no-listing"]), *(["-v"] * verbosity)]
    return int(command(argv) or 0)


def _new_extension(argv: list[str]) -> int:
    from .scaffold import new_extension

    p = argparse.ArgumentParser(prog="ocsi new-extension",
                                description="Write a ready extension distribution ocsi-ext-NAME.")
    p.add_argument("name", metavar="NAME", help="the extension's name (its element too)")
    p.add_argument("dir", metavar="DIR", nargs="?", help="where (default ./ocsi-ext-NAME)")
    try:
        ns = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        root = new_extension(ns.name, ns.dir)
    except (ValueError, FileExistsError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    print(f"wrote {root}/\n  pip install -e {root}\n  pytest {root}")
    return 0


def _extensions() -> int:
    pm = new_plugin_manager()
    catalog = Catalog()
    infos = catalog.extensions()
    if not infos:
        print("no ocsi extension is installed")
        return 0
    for info in infos:
        elements = ""
        try:
            plugin = info.entry_point.load()
            fn = getattr(plugin, "ocsi_elements", None)
            if fn is not None:
                elements = ", ".join(f"<{t}>" for t in sorted(fn() or {}))
            pm.is_registered(plugin)
        except Exception as exc:  # noqa: BLE001
            elements = f"(cannot load: {type(exc).__name__}: {exc})"
        deps = ", ".join(info.dependencies) or "-"
        print(f"{info.name} {info.version}")
        if info.summary:
            print(f"    {info.summary}")
        print(f"    elements: {elements or '-'}")
        print(f"    depends on: {deps}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
