"""The command pipe (spec §5): a FIFO read line by line, one command per line.

Built-in commands: ``reload [FILE]``, ``shutdown [SECONDS|notimeout]``, ``gc``, ``clearcache``,
``reopen_logs``, ``logs:LOGGER [LEVEL]``. ``PREFIX:NAME args`` goes to the extension whose
short name (``revproxy`` for ``ocsi-ext-revproxy``) or full name is ``PREFIX``. Unknown
commands are logged and ignored; a failing command is logged and the pipe keeps being read.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._extensions.enabled import single
from .logs import NOTICE
from .replies import Reply, conclude, received, watching
from .upgrade import UPGRADE_FROM

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("ocsi.main")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": NOTICE,
          "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL}


#: What :func:`shutdown_timeout` returns for an argument that is not a duration.
INVALID = object()


def shutdown_timeout(args: list[str], default: float | None) -> float | None | object:
    """The drain timeout a ``shutdown [SECONDS|notimeout]`` asks for (``None``: no limit).

    Logs and returns :data:`INVALID` for an argument that is neither.
    """
    if not args:
        return default
    if args[0] == "notimeout":
        return None
    try:
        return float(args[0])
    except ValueError:
        log.error("shutdown: %r is not a number of seconds or notimeout", args[0])
        return INVALID


def short_name(plugin_name: str) -> str:
    return plugin_name[len("ocsi-ext-"):] if plugin_name.startswith("ocsi-ext-") else plugin_name


class Commands:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.processed = 0

    async def run(self, line: str) -> None:
        words, reply = received(line)
        if not words:
            return
        ok = False
        try:
            with watching(reply):
                ok = await self._dispatch(words, reply)
        except Exception:  # noqa: BLE001 - the pipe must keep working
            log.exception("Uncaught exception after command %r", " ".join(words))
        finally:
            self.processed += 1
            conclude(reply, words[0], ok)

    async def _dispatch(self, words: list[str], reply: Reply | None) -> bool:
        """Run one command; whether it did what was asked (what ``ocsi reload`` reports)."""
        head, args = words[0], words[1:]
        if ":" in head:
            prefix, name = head.split(":", 1)
            if prefix == "logs":
                self._logs(name, args)
                return True
            if (prefix, name) == ("ssl", "reload"):
                return await self.server.reload_certificates()
            return await self._extension(prefix, name, args)
        srv = self.server
        if head == "reload":
            return await srv.reload(args[0] if args else None)
        if head == "shutdown":
            timeout = shutdown_timeout(args, srv.settings.shutdowntimeout)
            if timeout is INVALID:
                return False
            if reply is not None:
                srv.shutdown_replies.append(reply)
            srv.request_shutdown(timeout)
            return True
        if head == "gc":
            collected = gc.collect()
            log.log(NOTICE, "Heap compaction requested by user (%d objects collected)", collected)
        elif head == "clearcache":
            srv.runtime.extensions.hook.ocsi_clear_caches()
            log.log(NOTICE, "Caches cleared")
        elif head == "reopen_logs":
            return srv.reopen_logs()
        elif head == "upgrade":
            return await srv.upgrade()
        else:
            log.warning("Unknown command: %s", " ".join(words))
            return False
        return True

    def _logs(self, section: str, args: list[str]) -> None:
        name = section.replace(":", ".")
        if name.startswith("ocsigen"):
            name = "ocsi" + name[len("ocsigen"):]
        level = LEVELS.get(args[0].lower(), logging.WARNING) if args else logging.WARNING
        logging.getLogger(name).setLevel(level)
        log.log(NOTICE, "Log level of %s set to %s", name, logging.getLevelName(level))

    async def _extension(self, prefix: str, name: str, args: list[str]) -> bool:
        enabled = self.server.runtime.extensions
        for plugin in enabled.names:
            if prefix not in (plugin, short_name(plugin)):
                continue
            commands = enabled.addressed("ocsi_commands", plugin)
            handlers: Mapping[str, Any] = single(commands()) if commands is not None else {}
            handler = (handlers or {}).get(name)
            if handler is None:
                continue
            result: Any = handler(args)
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                log.log(NOTICE, "%s:%s: %s", prefix, name, result)
            return True
        log.warning("Unknown command: %s:%s", prefix, name)
        return False


def open_fifo(path: str) -> tuple[int, bool]:
    """Create the FIFO at ``path`` (0660) unless it exists; return a non-blocking fd and whether
    it was created. Shared by the server's pipe and the worker master's.

    A FIFO left by a server that did not stop cleanly is simply taken over. One that another
    process is reading (a second server given the same ``<commandpipe>``) is used too, as
    Ocsigen does, but said: commands sent there would reach either server."""
    created = False
    if not os.path.exists(path):
        old = os.umask(0)
        try:
            os.mkfifo(path, 0o660)
            created = True
        finally:
            os.umask(old)
        log.info("Command pipe created: %s", path)
    elif not stat.S_ISFIFO(os.stat(path).st_mode):
        log.warning("%s exists and is not a FIFO; using it as it is", path)
    elif _has_reader(path) and os.environ.get(UPGRADE_FROM) is None:
        log.warning("another process already reads the command pipe %s: commands sent there "
                    "reach either process; give each server its own <commandpipe>", path)
    # Read-write so that the pipe never reports end of file when writers come and go.
    return os.open(path, os.O_RDWR | os.O_NONBLOCK), created


def _has_reader(path: str) -> bool:
    """Whether a process has the FIFO open for reading (opening it to write, without blocking,
    fails with ENXIO when nobody does)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError:
        return False
    return True


def remove_fifo(path: str, fd: int) -> None:
    """Remove the command pipe at exit, if it is still the FIFO ``fd`` reads: a FIFO left
    behind makes ``echo reload > PIPE`` wait forever for a reader that will never come."""
    try:
        mine = os.fstat(fd)
        there = os.stat(path)
        if (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino):
            os.unlink(path)
    except OSError as exc:  # the directory is not ours to write after dropping privileges
        log.info("command pipe %s left in place (%s)", path, exc.strerror or exc)


def split_lines(buffer: bytes, data: bytes) -> tuple[list[str], bytes]:
    """Complete command lines in ``buffer + data``, and the incomplete rest."""
    *lines, rest = (buffer + data).split(b"\n")
    return [line.decode("utf-8", "replace") for line in lines], rest


class CommandPipe:
    """Reads the FIFO without blocking the loop; commands run one after the other, in order."""

    def __init__(self, path: str, commands: Commands) -> None:
        self.path = path
        self.commands = commands
        self.fd: int | None = None
        self._buffer = b""
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.created = False

    def open(self) -> None:
        self.fd, self.created = open_fifo(self.path)
        loop = asyncio.get_running_loop()
        loop.add_reader(self.fd, self._readable)
        self._task = loop.create_task(self._consume())

    def _readable(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        lines, self._buffer = split_lines(self._buffer, data)
        for line in lines:
            self._queue.put_nowait(line)

    async def _consume(self) -> None:
        while True:
            line = await self._queue.get()
            await self.commands.run(line)

    def close(self, keep: bool = False) -> None:
        """Stop reading; the FIFO is removed unless ``keep`` (a successor reads it now)."""
        if self.fd is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.fd)
            except RuntimeError:
                pass
            if not keep:
                remove_fifo(self.path, self.fd)
            os.close(self.fd)
            self.fd = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
