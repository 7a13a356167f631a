"""``ocsi reload``, ``ocsi shutdown``, ``ocsi reopen-logs`` and ``ocsi command LINE``: talk to a
running server through its command pipe and say how it went, as ``nginx -s reload`` and
``caddy reload`` do.

The pipe is the configuration's ``<commandpipe>`` (``-c FILE``, else the default file). The
command goes with ``reply=FIFO`` (see :mod:`ocsi.replies`), so the server's warnings and errors
about it come back and the exit code says whether it worked: 0 done, 1 refused or failed (a
broken configuration on reload), 3 no server is reading the pipe, 4 no answer in time. A
server that does not answer (an Ocsigen Server, which ignores ``reply=``) times out, never hangs.

Private: not part of the extension API.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import stat
import sys
import tempfile
import time

from ._config.errors import ConfigError
from ._config.xml import parse_file
from .replies import REPLY_PREFIX

__all__ = ["control_main", "CONTROL_COMMANDS"]

EXIT_DONE, EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_TIMEOUT = 0, 1, 3, 4

#: ``ocsi NAME``: the pipe command it sends and what it says.
CONTROL_COMMANDS = {
    "reload": ("reload", "re-read the running server's configuration (a broken one changes nothing)"),
    "shutdown": ("shutdown", "stop the running server after the requests in flight"),
    "reopen-logs": ("reopen_logs", "open the log files anew (after logrotate moved them)"),
    "upgrade": ("upgrade", "hand the sockets to a new process from the code installed now"),
    "command": ("", "send any command-pipe line (clearcache, logs:SECTION LEVEL, ssl:reload, …)"),
}


def find_pipe(config: str) -> str:
    """The ``<commandpipe>`` of ``config``'s ``<server>``, read without building the
    configuration (a file being fixed must not stop ``ocsi reload`` from finding the pipe)."""
    root = parse_file(config)
    for server in root.children:
        if server.tag != "server":
            continue
        for el in server.children:
            if el.tag == "commandpipe" and el.text.strip():
                return el.text.strip()
    raise ConfigError("the configuration has no <commandpipe>, so the running server cannot be "
                      "reached", where=config,
                      hint="add <commandpipe>/run/ocsi/ocsi.cmd</commandpipe> to <server>, or "
                           "send a signal to the server's process (HUP reloads, TERM stops, "
                           "USR1 reopens the logs)")


def _parser(name: str, default_config: str) -> argparse.ArgumentParser:
    _, summary = CONTROL_COMMANDS[name]
    p = argparse.ArgumentParser(prog=f"ocsi {name}", description=summary[0].upper() + summary[1:] + ".")
    p.add_argument("-c", "--config", metavar="FILE", default=default_config,
                   help=f"the running server's configuration, for its <commandpipe> (default {default_config})")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="how long to wait for the outcome (default 30; shutdown and upgrade: 60)")
    if name == "reload":
        p.add_argument("file", nargs="?", metavar="OTHER_FILE",
                       help="load this file once instead of re-reading the configuration")
    elif name == "shutdown":
        p.add_argument("--drain", metavar="SECONDS|notimeout",
                       help="how long requests in flight may take (default <shutdowntimeout>)")
    elif name == "command":
        p.add_argument("words", nargs="+", metavar="WORD", help="the command line to send")
    return p


def control_main(name: str, argv: list[str], default_config: str) -> int:
    try:
        ns = _parser(name, default_config).parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    words = [CONTROL_COMMANDS[name][0]]
    if name == "reload" and ns.file:
        words.append(os.path.abspath(ns.file))
    elif name == "shutdown" and ns.drain:
        words.append(ns.drain)
    elif name == "command":
        words = ns.words
    if not os.path.exists(ns.config):
        print(f"ocsi {name}: configuration file {ns.config} not found (give the running "
              "server's with -c FILE, or set $OCSI_CONFIG)", file=sys.stderr)
        return EXIT_FAILED
    try:
        pipe = find_pipe(ns.config)
    except ConfigError as exc:
        print(f"ocsi {name}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    timeout = ns.timeout if ns.timeout is not None else (
        60.0 if name in ("shutdown", "upgrade") else 30.0)
    return send(pipe, " ".join(words), timeout, name)


def send(pipe: str, line: str, timeout: float, name: str = "command") -> int:
    """Write ``line`` to ``pipe`` with a reply FIFO, print what comes back, return the exit code."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        print(f"ocsi {name}: {pipe} does not exist: is the server running?", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except OSError as exc:
        reason = ("no server is reading it (it has stopped)" if exc.errno == 6  # ENXIO
                  else exc.strerror or str(exc))
        print(f"ocsi {name}: cannot write to {pipe}: {reason}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    folder = tempfile.mkdtemp(prefix="ocsi-reply-")
    try:
        reply = os.path.join(folder, "reply")
        _make_reply_fifo(folder, reply, os.fstat(fd))
        # read-write: never an end of file before the server has written, nor a blocking open
        rfd = os.open(reply, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            try:
                os.write(fd, f"{REPLY_PREFIX}{reply} {line}\n".encode())
            finally:
                os.close(fd)
            if name == "shutdown":
                print("ocsi shutdown: stopping (requests in flight may finish first)…", file=sys.stderr)
            return _read_outcome(rfd, timeout, name)
        finally:
            os.close(rfd)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _make_reply_fifo(folder: str, path: str, pipe: os.stat_result) -> None:
    """A FIFO the server can write to: it may run as another ``<user>`` than the sender."""
    os.mkfifo(path, 0o600)
    if pipe.st_uid != os.getuid():
        if os.getuid() == 0:
            os.chown(path, pipe.st_uid, pipe.st_gid)
        else:
            os.chmod(path, 0o622)
        os.chmod(folder, stat.S_IRWXU | stat.S_IXGRP | stat.S_IXOTH)


def _read_outcome(fd: int, timeout: float, name: str) -> int:
    deadline = time.monotonic() + timeout
    buffer = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"ocsi {name}: no answer within {timeout:g} s (the command was sent; the "
                  "server's logs say what happened)", file=sys.stderr)
            return EXIT_TIMEOUT
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        buffer += data
        *lines, rest = buffer.split(b"\n")
        buffer = rest
        for raw in lines:
            text = raw.decode("utf-8", "replace")
            if text.startswith("done: "):
                outcome = text[len("done: "):]
                if outcome == "failed":
                    print(f"ocsi {name}: failed", file=sys.stderr)
                    return EXIT_FAILED
                print(f"ocsi {name}: {'done' if outcome == 'ok' else outcome}", file=sys.stderr)
                return EXIT_DONE
            print(f"ocsi {name}: {text}", file=sys.stderr)
