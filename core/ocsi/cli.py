"""Command line: ``ocsi [-c FILE] [options]``, ``ocsi serve DIR``, ``ocsi extensions``.

Exit codes follow Ocsigen's classes (spec §1.5): 2 usage, 9 system error (bind…), 10 wrong
TLS key password, 50 configuration error, 51 XML syntax error, 52 extension load failure,
53 extension not installed, 100 anything else.

Private: not part of the extension API.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from . import __version__
from ._config.errors import ConfigError
from .control import CONTROL_COMMANDS, control_main
from ._extensions.loader import new_plugin_manager
from .runtime import build_configuration

#: Commands of the built-in extensions (``ocsi.cli`` entry points), named when not installed.
PROVIDED_BY = {"serve": "ocsi-ext-staticmod", "proxy": "ocsi-ext-revproxy", "app": "ocsi-ext-asgi"}
DEFAULT_CONFIG = os.environ.get("OCSI_CONFIG", "/etc/ocsi/ocsi.conf")
EXIT_USAGE, EXIT_SYSTEM, EXIT_OTHER = 2, 9, 100


#: Commands of the core, for ``--help`` (extensions add theirs through ``ocsi.cli``).
BUILTIN_COMMANDS = {
    "extensions": "the installed extensions: version, elements, dependencies",
    "new-extension NAME": "write a ready extension distribution ocsi-ext-NAME",
    "cert dev [NAMES]": "a local CA and a certificate for development",
    "cert status [-c FILE]": "certificates from the ACME CA: expiry, next renewal, last error",
    **{("command LINE" if name == "command" else name): summary
       for name, (_, summary) in CONTROL_COMMANDS.items()},
}


def _commands_help() -> str:
    """The ``Commands:`` part of ``--help``: the core's, then every installed extension's."""
    rows = dict(BUILTIN_COMMANDS)
    for name, summary in _extension_commands():
        rows.setdefault(name, summary)
    width = max(len(n) for n in rows) + 2
    lines = ["commands (ocsi COMMAND --help for each):"]
    lines += [f"  {name.ljust(width)}{summary}" for name, summary in rows.items()]
    return "\n".join(lines)


def _extension_commands() -> list[tuple[str, str]]:
    """``(name, first line of its docstring)`` for each ``ocsi.cli`` entry point; one that
    cannot be loaded is listed with the reason."""
    import importlib_metadata as metadata  # a dependency of ocsi (the newest behaviour everywhere)

    out = []
    for ep in sorted(metadata.entry_points(group="ocsi.cli"), key=lambda e: e.name):
        try:
            doc = (ep.load().__doc__ or "").strip().splitlines()
            summary = doc[0].rstrip(".") if doc else f"(from {ep.value.split(':')[0]})"
        except Exception as exc:  # noqa: BLE001 - --help must always work
            summary = f"(cannot load: {type(exc).__name__})"
        # "MODULE:APP: serve …" documents the arguments first
        args, sep, rest = summary.partition(": ")
        if sep and (" " not in args.strip() or args.startswith("--")):
            out.append((f"{ep.name} {args}", rest))
        else:
            out.append((ep.name, summary))
    return out


def _main_parser(with_commands: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ocsi",
        usage="ocsi [-c FILE] [options] | ocsi COMMAND …",
        description="A web server configured like Ocsigen Server.",
        epilog=_commands_help() if with_commands else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    from ._config.directives import parse_workers
    from ._config.values import ValueFormatError

    try:
        return parse_workers(text)
    except ValueFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fail(message: str, code: int) -> int:
    print(f"ocsi: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .upgrade import record_command_line

    record_command_line(argv)
    if argv and argv[0] == "extensions":
        return _extensions()
    if argv and argv[0] == "new-extension":
        return _new_extension(argv[1:])
    if argv and argv[0] == "cert":
        from .devcert import cert_command

        return cert_command(argv[1:])
    if argv and argv[0] in CONTROL_COMMANDS:
        return control_main(argv[0], argv[1:], DEFAULT_CONFIG)
    if argv and not argv[0].startswith("-"):
        command = _extension_command(argv[0])
        if command is not None:
            return int(command(argv[1:]) or 0)
        if argv[0] in PROVIDED_BY:
            return _fail(f"'ocsi {argv[0]}' comes with {PROVIDED_BY[argv[0]]}: "
                         f"pip install {PROVIDED_BY[argv[0]]}", EXIT_USAGE)
    try:
        args = _main_parser(with_commands="-h" in argv or "--help" in argv).parse_args(argv)
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
    from ._config.directives import configured_workers
    from .workers import run_master

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
    certificates are read while building). Warnings of the build (a missing ``<static dir>``,
    a risky option) are printed and counted: they do not fail the check."""
    from .logs import collected_warnings
    from .tls import check_server_pair

    with collected_warnings() as warnings:
        try:
            config = build_configuration(new_plugin_manager(), path)
            ssl = config.settings.ssl
            note = check_server_pair(ssl) if ssl is not None and ssl.certificate else None
        except ConfigError as exc:
            print(f"ocsi: {exc}", file=sys.stderr)
            return exc.exit_code
    for record in warnings:
        print(f"ocsi: warning: {record.getMessage()}", file=sys.stderr)
    if note and not quiet:
        print(f"{path}: {note}")
    if not quiet:
        exts = ", ".join(config.extensions.names) or "none"
        counted = f", {len(warnings)} warning(s) above" if warnings else ""
        print(f"{path}: configuration OK ({len(config.hosts)} host(s); extensions: {exts}{counted})")
    return 0


def _extension_command(name: str) -> Any:
    """``ocsi NAME …`` given by an installed extension: an entry point in the group
    ``ocsi.cli`` (authbasic's ``hash-password``), loaded only when asked for."""
    import importlib_metadata as metadata  # a dependency of ocsi (the newest behaviour everywhere)

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
    # the interpreter running ocsi, so the commands work without an activated environment
    python = shlex.quote(_shown_path(sys.executable))
    where = shlex.quote(_shown_path(str(root)))
    print(f"wrote {where}/\nthen:\n  {python} -m pip install -e {where}\n"
          f"  {python} -m pytest {where}")
    return 0


def _shown_path(path: str) -> str:
    """``path`` relative to the current directory when it is below it (shorter to read)."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def _extensions() -> int:
    from ._extensions.reference import collect, lines

    refs = collect()
    if not refs:
        print("no ocsi extension is installed")
        return 0
    for ref in refs:
        print("\n".join(lines(ref)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
