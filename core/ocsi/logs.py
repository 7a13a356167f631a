"""Logs: warnings and errors (and, through :mod:`ocsi.accesslog`, access lines), in files
under ``<logdir>``, on the terminal or to syslog (spec §6).

File mode writes ``access.log``, ``warnings.log`` (WARNING) and ``errors.log`` (ERROR and
above), created 0640 and opened for appending; unless silent, warnings and errors are echoed on
stderr and the rest on stdout, as Ocsigen does. Without a ``<logdir>`` (and in serve mode) the
same lines go to stdout/stderr only and no file is written.

Application messages go through :mod:`logging` (so extensions' loggers follow ``-v`` levels);
this module sets up its handlers and formats. Access lines do not: one per response is too hot
for the logging machinery, so :class:`~ocsi.accesslog.AccessLog` formats and writes them
itself; :class:`Logs` opens, reopens and closes both.

Private: not part of the extension API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO

from .accesslog import AccessLog, rfc3339, stamp

#: Routine events an operator wants to see without asking (listening, reloads, commands):
#: between INFO and WARNING, as syslog's and nginx's ``notice``. Shown on the terminal at the
#: default verbosity and kept in ``warnings.log`` tagged ``[NOTICE]``, so alerting on
#: ``[WARNING]`` and ``[ERROR]`` sees only what needs attention.
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")


class OcsigenFormatter(logging.Formatter):
    """``Jun 26 12:00:01: ocsigen:config: [WARNING] message`` (Ocsigen's layout)."""

    def format(self, record: logging.LogRecord) -> str:
        source = record.name.replace(".", ":") if record.name != "root" else "application"
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{stamp(record.created)}: {source}: [{record.levelname}] {text}"


class JsonFormatter(logging.Formatter):
    """``<logformat>json</logformat>``: one JSON object per line, for log pipelines.

    Fields: ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``, and
    ``extension`` (``ocsi-ext-NAME`` for an extension's logger) and ``exception`` (the
    traceback as one string) when they apply. ``json.dumps`` escapes every control character,
    so no message carrying request input can forge a line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": rfc3339(record.created), "level": record.levelname.lower(),
            "logger": record.name, "message": record.getMessage(), "pid": record.process,
        }
        if record.name.startswith("ocsi.ext."):
            out["extension"] = "ocsi-ext-" + record.name.split(".")[2]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=True)



class _MaxLevel(logging.Filter):
    def __init__(self, below: int) -> None:
        super().__init__()
        self.below = below

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.below


class _LevelRange(logging.Filter):
    def __init__(self, low: int, below: int) -> None:
        super().__init__()
        self.low = low
        self.below = below

    def filter(self, record: logging.LogRecord) -> bool:
        return self.low <= record.levelno < self.below


def _open_log(path: str) -> IO[str]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    return os.fdopen(fd, "a", buffering=1, encoding="utf-8", errors="replace")


class _ReopenableFileHandler(logging.StreamHandler[IO[str]]):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(_open_log(path))

    def reopen(self) -> None:
        self.acquire()
        try:
            old = self.stream
            self.stream = _open_log(self.path)
            old.close()
        finally:
            self.release()

    def close(self) -> None:
        self.acquire()
        try:
            self.stream.close()
        finally:
            self.release()
        super().close()



#: Where ``<syslog>`` sends messages: the local syslog socket (``OCSI_SYSLOG_SOCKET`` overrides it).
SYSLOG_SOCKET = "/dev/log"
_FACILITY_ALIASES = {"kernel": "kern"}


def _syslog_handler(facility: str) -> logging.Handler | None:
    from logging.handlers import SysLogHandler

    class _SysLog(SysLogHandler):
        """A syslog that went away (syslogd restarting) costs one line on stderr a minute,
        not a traceback per message; the handler reconnects by itself on the next one."""

        _last_complaint = 0.0

        def handleError(self, record: logging.LogRecord) -> None:
            now = time.monotonic()
            if now - self._last_complaint >= 60:
                self._last_complaint = now
                sys.stderr.write(f"ocsi: cannot write to syslog at {address}; messages are lost\n")

    name = _FACILITY_ALIASES.get(facility, facility)
    address = os.environ.get("OCSI_SYSLOG_SOCKET", SYSLOG_SOCKET)
    try:
        # SysLogHandler itself does not tell a missing socket (it retries on every message)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(address)
        finally:
            probe.close()
        handler = _SysLog(address=address, facility=SysLogHandler.facility_names[name])
    except OSError as exc:
        sys.stderr.write(f"ocsi: cannot reach syslog at {address} ({exc.strerror or exc}); "
                         "logging to the terminal\n")
        return None
    handler.ident = "ocsi: "
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


class _Keep(logging.Handler):
    """Keeps notices, warnings and errors in a list."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(NOTICE)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextlib.contextmanager
def collected_warnings() -> Iterator[list[logging.LogRecord]]:
    """Warnings logged inside the block, kept in a list instead of printed by logging's last
    resort (what ``ocsi --check`` reports, with no log destinations set up)."""
    records: list[logging.LogRecord] = []
    root = logging.getLogger()
    handler = _Keep(records)
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


class Logs:
    """The process's log destinations; ``reopen()`` serves ``reopen_logs`` and SIGUSR1."""

    def __init__(self, logdir: str | None, silent: bool, verbosity: int,
                 access_format: str = "ocsigen", syslog: str | None = None,
                 keep: bool = False, log_format: str = "ocsigen") -> None:
        if syslog is not None:
            logdir = None  # as in Ocsigen, <syslog> replaces the log files
        self.logdir = logdir
        self.silent = silent
        self._handlers: list[logging.Handler] = []
        root = logging.getLogger()
        for h in list(root.handlers):
            if getattr(h, "_ocsi", False):
                root.removeHandler(h)
        level = {0: NOTICE, 1: NOTICE, 2: logging.INFO}.get(verbosity, logging.DEBUG)
        root.setLevel(level)
        logging.getLogger("ocsi").setLevel(level)
        fmt: logging.Formatter = JsonFormatter() if log_format == "json" else OcsigenFormatter()
        if logdir is not None:
            if not os.path.isdir(logdir):
                raise OSError(f"log directory {logdir} does not exist")
            warn = _ReopenableFileHandler(os.path.join(logdir, "warnings.log"))
            warn.addFilter(_LevelRange(NOTICE, logging.ERROR))
            err = _ReopenableFileHandler(os.path.join(logdir, "errors.log"))
            err.setLevel(logging.ERROR)
            self._handlers += [warn, err]
        self._console: list[logging.Handler] = []
        if not silent:
            out = logging.StreamHandler(sys.stdout)
            out.addFilter(_MaxLevel(logging.WARNING))
            errh = logging.StreamHandler(sys.stderr)
            errh.setLevel(logging.WARNING)
            self._handlers += [out, errh]
            self._console = [out, errh]
        for h in self._handlers:
            h.setFormatter(fmt)
        sys_handler = _syslog_handler(syslog) if syslog is not None else None
        if sys_handler is not None:
            self._handlers.append(sys_handler)
        if not self._handlers:  # silent, no log files: nothing at all, not logging's last resort
            self._handlers.append(logging.NullHandler())
        #: Warnings and errors logged while these logs are open (``keep``): the first build's,
        #: which run before the configuration named the log files, replayed into them.
        self.kept: list[logging.LogRecord] = []
        if keep:
            self._handlers.append(_Keep(self.kept))
        for h in self._handlers:
            h._ocsi = True  # type: ignore[attr-defined]  # marks the handlers these logs own
            root.addHandler(h)
        access_path = os.path.join(logdir, "access.log") if logdir is not None else None
        self.access = AccessLog(access_path, console=not silent, fmt=access_format)
        self.access.syslog = sys_handler

    def reopen(self) -> bool:
        """Open every log file anew (after logrotate moved them). One that cannot be opened
        keeps being written where it was, and the failure is logged with the reason; whether
        every file was reopened."""
        log = logging.getLogger("ocsi.main")
        failed = []
        reopeners: list[tuple[str, Callable[[], None]]] = [
            (h.path, h.reopen) for h in self._handlers if isinstance(h, _ReopenableFileHandler)]
        if self.access.path is not None:
            reopeners.append((self.access.path, self.access.reopen))
        for path, reopen in reopeners:
            try:
                reopen()
            except OSError as exc:
                failed.append(path)
                log.error("cannot reopen %s (%s); still writing to the file it had: the log "
                          "directory must be writable by the server's <user>", path,
                          exc.strerror or exc)
        if failed:
            log.warning("Log files reopened, except %s", ", ".join(failed))
        else:
            log.log(NOTICE, "Log files reopened")
        return not failed

    def replay(self, records: list[logging.LogRecord]) -> None:
        """Write ``records`` (already shown on the terminal) to the files and syslog only."""
        for h in self._handlers:
            if h in self._console:
                continue
            for record in records:
                if record.levelno >= h.level:
                    h.handle(record)

    def set_access_format(self, fmt: str) -> None:
        self.access.fmt = fmt

    def set_log_format(self, fmt: str) -> None:
        """``<logformat>`` after a reload: the files and the terminal (syslog keeps its own)."""
        formatter: logging.Formatter = JsonFormatter() if fmt == "json" else OcsigenFormatter()
        for h in self._handlers:
            if isinstance(h, logging.StreamHandler):
                h.setFormatter(formatter)

    def close(self) -> None:
        self.access.close()
        root = logging.getLogger()
        for h in self._handlers:
            root.removeHandler(h)
            h.close()
        self._handlers = []
