"""``<user>`` and ``<group>``: drop root privileges once the listeners and files are open.

The sockets are bound first, so a server started as root can listen on ports below 1024 and
then run as an unprivileged user (Ocsigen 5.0.1 dropped privileges before binding, so low ports
failed). The log files and the command pipe are handed to that user so that ``reopen_logs``
and the pipe keep working.

Private: not part of the extension API.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from collections.abc import Iterable

from ._config.errors import ConfigError

log = logging.getLogger("ocsi.main")


def resolve(user: str | None, group: str | None) -> tuple[pwd.struct_passwd | None, int]:
    """The password entry of ``user`` (names or numbers) and the group id to run with."""
    try:
        pw = pwd.getpwnam(user) if user and not user.isdigit() else (
            pwd.getpwuid(int(user)) if user else None)
    except KeyError:
        raise ConfigError(f"unknown user {user} in <user>") from None
    try:
        gid = (grp.getgrnam(group).gr_gid if group and not group.isdigit()
               else int(group) if group else (pw.pw_gid if pw else os.getgid()))
    except KeyError:
        raise ConfigError(f"unknown group {group} in <group>") from None
    return pw, gid


def drop(user: str | None, group: str | None, paths: Iterable[str] = (),
         writable_dirs: Iterable[str] = ()) -> None:
    """Switch to ``user``/``group``; a no-op when neither is given.

    ``paths`` (open log files, the command pipe) are handed to the user first. ``writable_dirs``
    are checked afterwards: where the user cannot create files (the log directory), a
    ``reopen_logs`` after logrotate could not make new files, which is said now, at start.
    """
    if not user and not group:
        return
    pw, gid = resolve(user, group)
    uid = pw.pw_uid if pw else os.getuid()
    if os.getuid() != 0:
        if uid != os.getuid() or gid != os.getgid():
            log.warning("<user>/<group> ignored: the server does not run as root")
        return
    for path in paths:
        try:
            os.chown(path, uid, gid)
        except OSError:
            pass  # a file we cannot hand over stays as it is; reopening it may then fail
    os.setgroups([])
    if pw is not None:
        os.initgroups(pw.pw_name, gid)
    os.setgid(gid)
    os.setuid(uid)
    log.info("running as uid %d, gid %d", uid, gid)
    for directory in writable_dirs:
        if not os.access(directory, os.W_OK | os.X_OK):
            log.warning("%s is not writable by uid %d: after a rotation, reopen_logs will not be "
                        "able to create new log files there (make the directory the user's)",
                        directory, uid)
