"""Logs: access, warnings and errors, in files under ``<logdir>`` or on the terminal (spec §6).

File mode writes ``access.log``, ``warnings.log`` (WARNING) and ``errors.log`` (ERROR and
above), created 0640 and opened for appending; unless silent, warnings and errors are echoed on
stderr and the rest on stdout, as Ocsigen does. Without a ``<logdir>`` (and in serve mode) the
same lines go to stdout/stderr only and no file is written.

Application messages go through :mod:`logging` (so extensions' loggers follow ``-v`` levels);
access lines do not: one per response is too hot for the logging machinery, so they are
formatted here, kept as whole lines and written every second and at exit (one ``os.write``
per flush, so the lines of several worker processes never interleave).

Private: not part of the extension API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING

from ._http.hostport import split_host_port

if TYPE_CHECKING:
    from ._http.access import AccessRecord

#: Routine events an operator wants to see without asking (listening, reloads, commands):
#: between INFO and WARNING, as syslog's and nginx's ``notice``. Shown on the terminal at the
#: default verbosity and kept in ``warnings.log`` tagged ``[NOTICE]``, so alerting on
#: ``[WARNING]`` and ``[ERROR]`` sees only what needs attention.
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_stamp_cache: tuple[int, str] = (-1, "")


def _stamp(t: float) -> str:
    """``Nov 22 10:30:18`` in local time, computed once per second (it is on the hot path)."""
    global _stamp_cache
    sec = int(t)
    if _stamp_cache[0] == sec:
        return _stamp_cache[1]
    lt = time.localtime(sec)
    text = f"{_MONTHS[lt.tm_mon - 1]} {lt.tm_mday:2d} {lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}"
    _stamp_cache = (sec, text)
    return text


class OcsigenFormatter(logging.Formatter):
    """``Jun 26 12:00:01: ocsigen:config: [WARNING] message`` (Ocsigen's layout)."""

    def format(self, record: logging.LogRecord) -> str:
        source = record.name.replace(".", ":") if record.name != "root" else "application"
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{_stamp(record.created)}: {source}: [{record.levelname}] {text}"


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


def rfc3339(t: float) -> str:
    """``2026-12-06T10:30:18.123Z``: UTC, milliseconds."""
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


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


def _open_append(path: str) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    # through the descriptor, and only for a regular file: never the mode of whatever a link
    # in the log directory points to
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fchmod(fd, 0o640)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data``; a short write (disk nearly full) is completed, never dropped."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class AccessLog:
    """Formats one line per response and writes it to ``access.log`` and/or stdout.

    Lines are kept as whole lines and written with one ``os.write`` per flush on an
    ``O_APPEND`` descriptor: with worker processes several writers share ``access.log``, and
    Linux makes each such write atomic for regular files, so lines never interleave (a buffered
    file object could cut a line at its buffer boundary).

    Lines for stdout go out as they come when it is a terminal; otherwise (a file, a pipe, a
    service manager's journal) they are gathered and written at the same moments as the
    file's, so that an unbuffered stdout (``PYTHONUNBUFFERED``, as containers often set) does
    not cost a system call per request.
    """

    #: Buffered characters beyond which lines are written before the per-second flush.
    FLUSH_AT = 64 * 1024
    #: The same bound for the lines waiting for stdout, in lines.
    FLUSH_LINES = 512

    def __init__(self, path: str | None, console: bool, fmt: str = "ocsigen") -> None:
        #: With ``<syslog>``: access lines also go there (at INFO).
        self.syslog: logging.Handler | None = None
        self.path = path
        self.console = console
        self.fmt = fmt
        self.fd: int | None = _open_append(path) if path is not None else None
        #: The writing process (each worker opens its own logs): the ``pid`` of JSON lines.
        self.pid = os.getpid()
        #: This process's index among the workers (``None`` without workers): JSON's ``worker``.
        self.worker: int | None = None
        self._lines: list[str] = []
        self._size = 0
        #: Lines for stdout not written yet; ``None`` when stdout is a terminal (as they come).
        self._out: list[str] | None = [] if console and not _is_terminal(sys.stdout) else None
        #: Lines that could not be written since the last failure began (disk full…).
        self.lost = 0

    def write(self, rec: AccessRecord) -> None:
        line = self.format(rec)
        if self.fd is not None:
            self._lines.append(line)
            self._size += len(line)
            if self._size >= self.FLUSH_AT:
                self._write_lines()
        if self.console:
            out = self._out
            if out is None:
                sys.stdout.write(line)
            else:
                out.append(line)
                if len(out) >= self.FLUSH_LINES:
                    self._write_out()
        if self.syslog is not None:  # syslog stamps lines itself
            msg = ocsigen_message(rec) if self.fmt == "ocsigen" else line.rstrip("\n")
            self.syslog.handle(logging.makeLogRecord(
                {"name": "ocsigen:access", "msg": msg, "levelno": logging.INFO,
                 "levelname": "INFO"}))

    def format(self, rec: AccessRecord) -> str:
        if self.fmt == "combined":
            return combined_line(rec)
        if self.fmt == "json":
            return json_line(rec, self.pid, self.worker)
        return ocsigen_line(rec)

    def _write_lines(self) -> None:
        if not self._lines or self.fd is None:
            return
        data = "".join(self._lines).encode("utf-8", "replace")
        count = len(self._lines)
        self._lines.clear()
        self._size = 0
        try:
            _write_all(self.fd, data)
        except OSError as exc:
            # The lines are dropped, not kept: memory must not grow while the disk is full.
            # Said once when it starts and once when it ends, not once per line.
            if not self.lost:
                logging.getLogger("ocsi.main").error(
                    "cannot write %s (%s): access lines are lost until it can be written again",
                    self.path, exc.strerror or exc)
            self.lost += count
            return
        if self.lost:
            logging.getLogger("ocsi.main").warning("%s is written again; %d access lines were lost",
                                                   self.path, self.lost)
            self.lost = 0

    def _write_out(self) -> None:
        out = self._out
        if out:
            text = "".join(out)
            out.clear()
            try:
                sys.stdout.write(text)
            except (OSError, ValueError):
                pass  # stdout closed or full: the file (if any) still has the lines

    def flush(self) -> None:
        self._write_lines()
        if self.console:
            self._write_out()
            try:
                sys.stdout.flush()
            except (OSError, ValueError):
                pass

    def reopen(self) -> None:
        if self.path is not None:
            self._write_lines()  # into the old file, which logrotate has just moved
            old = self.fd
            self.fd = _open_append(self.path)
            if old is not None:
                os.close(old)

    def close(self) -> None:
        self.flush()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


def _clean(text: str | None) -> str:
    """Neutralise control characters so a header cannot forge log lines."""
    if not text:
        return ""
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _hostname(host: str | None) -> str | None:
    """``Host`` without its port (``[v6]:port`` keeps the brackets)."""
    if not host:
        return host
    return split_host_port(host)[0] or host


#: ``(Host, client, User-Agent, X-Forwarded-For)`` → the start of Ocsigen's access message: a
#: client sends the same fields on every request of a connection, so the line is mostly made
#: once. Cleared when full.
_PREFIXES: dict[tuple[str | None, str, str | None, str | None], str] = {}
_MAX_PREFIXES = 1024


def _ocsigen_prefix(rec: AccessRecord) -> str:
    key = (rec.host, rec.client, rec.user_agent, rec.forwarded_for)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        host = _clean(_hostname(rec.host)) or "<host not specified in the request>"
        xff = f" X-Forwarded-For: {_clean(rec.forwarded_for)}" if rec.forwarded_for else ""
        prefix = f"connection for {host} from {rec.client} ({_clean(rec.user_agent)}){xff}: "
        if len(_PREFIXES) >= _MAX_PREFIXES:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    return prefix


def ocsigen_message(rec: AccessRecord) -> str:
    """Ocsigen's access message, then the status and body bytes: ``connection for H from C (UA): /p 200 12``."""
    target = rec.target
    path = _clean(target.split("?", 1)[0] if "?" in target else target) if target else "-"
    return f"{_ocsigen_prefix(rec)}{path} {rec.status} {rec.bytes_sent}"


def ocsigen_line(rec: AccessRecord) -> str:
    return f"{_stamp(rec.time)}: ocsigen:access: {ocsigen_message(rec)}\n"


def combined_line(rec: AccessRecord) -> str:
    t = time.localtime(rec.time)
    tz = time.strftime("%z", t)
    when = f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {tz}"
    req = f"{rec.method} {_clean(rec.target)} HTTP/{rec.version}" if rec.method else "-"
    host = _clean(rec.host) or "-"
    return (f'{host} {rec.client} - - [{when}] "{req}" {rec.status} {rec.bytes_sent} '
            f'"{_clean(rec.referer) or "-"}" "{_clean(rec.user_agent) or "-"}"\n')


def json_line(rec: AccessRecord, pid: int, worker: int | None = None) -> str:
    """``<accesslogformat>json</accesslogformat>``: the stable field names of
    docs/operations.md; request input is escaped by ``json.dumps`` (no line can be forged)."""
    return json.dumps({
        "time": rfc3339(rec.time), "host": rec.host, "client": rec.client,
        "forwarded_for": rec.forwarded_for, "method": rec.method, "target": rec.target,
        "protocol": f"HTTP/{'2' if rec.version == '2.0' else rec.version}" if rec.version else None,
        "status": rec.status, "bytes_sent": rec.bytes_sent,
        "duration_ms": round(rec.duration * 1000, 3), "referer": rec.referer,
        "user_agent": rec.user_agent, "tls": rec.secure, "tls_version": _tls_version(rec),
        "port": rec.port, "pid": pid,
        "worker": worker,
    }, ensure_ascii=True) + "\n"


def _tls_version(rec: AccessRecord) -> str | None:
    """``TLSv1.3``, ``TLSv1.2`` for an answer over TLS (QUIC's is always 1.3), else ``None``:
    what the connection that carried the request negotiated."""
    if not rec.secure or rec.request is None:
        return None
    version: str | None = getattr(rec.request.link, "tls_version", None)
    return version


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
