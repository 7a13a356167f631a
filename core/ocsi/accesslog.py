"""The access log: one line per response, in ``access.log`` and/or on stdout (spec §6).

Access lines do not go through :mod:`logging`: one per response is too hot for the logging
machinery, so they are formatted here (``ocsigen``, ``combined`` or ``json``, as
``<accesslogformat>`` says), kept as whole lines and written every second and at exit (one
``os.write`` per flush, so the lines of several worker processes never interleave). Everything
a response costs in logging is in this module; where the other messages go, and reopening the
files, is :mod:`ocsi.logs`'s.

Private: not part of the extension API.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import time
from typing import IO, TYPE_CHECKING

from ._http.hostport import split_host_port

if TYPE_CHECKING:
    from ._http.access import AccessRecord

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_stamp_cache: tuple[int, str] = (-1, "")


def stamp(t: float) -> str:
    """``Nov 22 10:30:18`` in local time, computed once per second (it is on the hot path).
    Ocsigen's stamp, also the one of the other log lines (:class:`ocsi.logs.OcsigenFormatter`)."""
    global _stamp_cache
    sec = int(t)
    if _stamp_cache[0] == sec:
        return _stamp_cache[1]
    lt = time.localtime(sec)
    text = f"{_MONTHS[lt.tm_mon - 1]} {lt.tm_mday:2d} {lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}"
    _stamp_cache = (sec, text)
    return text


def rfc3339(t: float) -> str:
    """``2026-12-06T10:30:18.123Z``: UTC, milliseconds."""
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


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
        line = ocsigen_line(rec) if self.fmt == "ocsigen" else self.format(rec)
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
    """:func:`ocsigen_message` after the time stamp (written out here: one call fewer on
    every answer)."""
    target = rec.target
    path = (target if target.isprintable() and "?" not in target else
            _clean(target.split("?", 1)[0])) if target else "-"
    return (f"{stamp(rec.time)}: ocsigen:access: {_ocsigen_prefix(rec)}{path} {rec.status} "
            f"{rec.bytes_sent}\n")


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
