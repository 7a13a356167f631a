"""Answers to command-pipe commands, for senders that want to know how a command went.

Ocsigen's command pipe is one-way: ``echo reload > PIPE`` cannot tell whether the new
configuration was taken or refused. ``ocsi reload`` (and ``shutdown``, ``reopen-logs``) makes a
FIFO of its own and sends ``reply=PATH reload``; the server (or the worker master) writes to
that FIFO, one line each, the warnings and errors logged while the command ran, then a last
line ``done: ok`` or ``done: failed`` (``done: stopped`` when a shutdown has finished). A
plain line without ``reply=`` works as it always did.

The reply path comes from whoever may write to the command pipe, who can already stop the
server; still, only a FIFO is ever opened there (never a file that could be overwritten), and
without blocking: a sender that went away costs nothing.

Private: not part of the extension API.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from typing import ContextManager

from .logs import NOTICE

__all__ = ["REPLY_PREFIX", "Reply", "conclude", "received", "take_reply", "watching"]

log = logging.getLogger("ocsi.main")

REPLY_PREFIX = "reply="

#: Loggers whose records are about requests, not about the command: never replied.
_NOT_THE_COMMAND = ("ocsi.http", "ocsi.pipeline", "ocsi.access")


def take_reply(line: str) -> tuple[str, Reply | None]:
    """``(command line, reply)``: the line without its ``reply=PATH`` word, and the FIFO opened
    (``None`` when there is none, or when it cannot be opened)."""
    head, _, rest = line.strip().partition(" ")
    if not head.startswith(REPLY_PREFIX):
        return line, None
    return rest, Reply.open(head[len(REPLY_PREFIX):])


def received(line: str) -> tuple[list[str], Reply | None]:
    """A pipe line's command words and its reply FIFO, the command logged (what the server and
    the worker master both do first). An empty line is answered ``failed`` and has no words."""
    line, reply = take_reply(line)
    words = line.split()
    if not words:
        if reply is not None:
            reply.done("failed")
    else:
        log.log(NOTICE, "Command received: %s", " ".join(words))
    return words, reply


def watching(reply: Reply | None) -> ContextManager[object]:
    """Copy the warnings and errors logged inside the block to ``reply`` (if there is one)."""
    return reply if reply is not None else contextlib.nullcontext()


def conclude(reply: Reply | None, command: str, ok: bool) -> None:
    """The last line of a command's reply; a ``shutdown`` that was taken answers later, once
    the server has stopped (``done: stopped``)."""
    if reply is not None and reply.fd is not None and (command != "shutdown" or not ok):
        reply.done("ok" if ok else "failed")


class Reply(logging.Handler):
    """The sender's FIFO. While it is installed as a log handler (``with reply:``), warnings
    and errors logged by the server are copied to it."""

    def __init__(self, fd: int) -> None:
        super().__init__(logging.WARNING)
        self.fd: int | None = fd

    @classmethod
    def open(cls, path: str) -> Reply | None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None  # gone, or not ours to write
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return cls(fd)

    def line(self, text: str) -> None:
        """Write ``text`` (its further lines indented, so none can pass for ``done:``); a
        sender gone or not reading loses it, the server never waits."""
        if self.fd is None:
            return
        first, *more = text.splitlines() or [""]
        data = "".join([first + "\n", *(f"  {m.lstrip()}\n" for m in more)]).encode("utf-8", "replace")
        try:
            os.write(self.fd, data)
        except OSError:
            self.close()

    def done(self, outcome: str) -> None:
        self.line(f"done: {outcome}")
        self.close()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_NOT_THE_COMMAND):
            return
        try:
            self.line(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - a reply never breaks logging
            pass

    def __enter__(self) -> Reply:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        super().close()
