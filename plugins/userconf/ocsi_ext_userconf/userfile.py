"""Reading a user's configuration file without trusting what is at its path.

The path is in a directory its user controls, so what is there may be anything: a FIFO (an
``open`` that waits for a writer), a link to ``/dev/zero`` (a read that never ends), a link to
another user's file, a file the size of the disk. :func:`read_user_file` reads only a regular
file that is itself at the path (``O_NOFOLLOW``), opened without waiting (``O_NONBLOCK``),
checked on the opened descriptor (``fstat``: no swap between check and read), owned by root or
by the owner of the directory that holds it, writable by no one else (as sshd's
``StrictModes``), and at most ``limit`` bytes. It blocks on the disk, so callers run it off the
event loop.
"""

from __future__ import annotations

import errno
import os
import stat

#: Default bound of a user's file: a configuration of a few elements is well below it.
DEFAULT_MAX_SIZE = 64 * 1024

_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
          | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))


class UserFileError(Exception):
    """The file at a user's path is not one the server reads (the message says why)."""


def read_user_file(path: str, limit: int = DEFAULT_MAX_SIZE) -> bytes:
    """The bytes of the user's file at ``path``; :class:`UserFileError` when it is refused,
    ``FileNotFoundError`` when nothing is there any more."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserFileError(f"{path} is a symbolic link (a user's file must be a regular "
                                "file)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserFileError(f"{path} is not a regular file")
        owner = os.stat(os.path.dirname(path) or ".").st_uid
        if st.st_uid not in (0, owner):
            raise UserFileError(f"{path} is owned by uid {st.st_uid}, not by the owner of its "
                                f"directory (uid {owner}) or root")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UserFileError(f"{path} is writable by others (mode {stat.S_IMODE(st.st_mode):o})")
        if st.st_size > limit:
            raise UserFileError(f"{path} is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may grow after the fstat: read at most limit + 1
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UserFileError(f"{path} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
