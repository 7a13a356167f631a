"""Upgrading ocsi with no dropped connection: ``upgrade`` on the command pipe, or SIGUSR2.

As nginx does with its binary upgrade, the running process starts a successor from the code
installed now (``python -m ocsi`` with the same arguments), handing it the listening sockets
(``OCSI_LISTEN_FDS``, read by :func:`ocsi.systemd.listen_fds`), and waits for it to say it is
ready, with systemd's own readiness message on a private notify socket. Both accept on the same
sockets for that moment; then the old process stops accepting and drains as ``shutdown`` does.
A connection is never refused: the listening sockets stay open throughout, in one process or
both. If the successor fails to start or is not ready in time, it is stopped and the old process
carries on, logging why.

The successor writes the pid file itself (the same ``-p`` argument), takes the command pipe
over (the old process leaves it in place when it exits) and, with ``--workers``, forks its own
workers.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from .logs import NOTICE
from .systemd import HANDOVER_FDS

__all__ = ["UPGRADE_FROM", "record_command_line", "successor_arguments", "start_successor"]

log = logging.getLogger("ocsi.main")

#: Set in the successor's environment: the pid it takes over from (quiets the "another process
#: reads the command pipe" warning, which is expected then).
UPGRADE_FROM = "OCSI_UPGRADE_FROM"


#: The arguments this process was started with by ``ocsi`` (``None``: started otherwise, from
#: Python or a test, which cannot be upgraded).
_command_line: list[str] | None = None


def record_command_line(argv: Sequence[str]) -> None:
    """Called by the command line: the successor is started with the same arguments."""
    global _command_line
    _command_line = list(argv)


def successor_arguments() -> list[str] | None:
    """The arguments for the successor; ``-d`` becomes ``-s`` (this process is already
    detached, and a successor that forks again would exit before saying it is ready)."""
    if _command_line is None:
        return None
    out = []
    for arg in _command_line:
        if arg in ("-d", "--daemon"):
            out.append("-s")
        else:
            out.append(arg)
    return out


def start_successor(arguments: Sequence[str], fds: Sequence[int], timeout: float) -> int | None:
    """Start ``python -m ocsi ARGUMENTS`` with the listening ``fds``; its pid once it is ready,
    or ``None`` (logged) when it failed or was not ready within ``timeout`` seconds."""
    folder = tempfile.mkdtemp(prefix="ocsi-upgrade-")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        path = os.path.join(folder, "notify")
        notify.bind(path)
        env = {**os.environ, "NOTIFY_SOCKET": path, HANDOVER_FDS: ",".join(map(str, fds)),
               UPGRADE_FROM: str(os.getpid())}
        env.pop("LISTEN_PID", None)
        env.pop("LISTEN_FDS", None)
        command = [sys.executable, "-m", "ocsi", *arguments]
        log.log(NOTICE, "Upgrade: starting %s", " ".join(command))
        try:
            child = subprocess.Popen(command, env=env, pass_fds=tuple(fds), stdin=subprocess.DEVNULL)
        except OSError as exc:
            log.error("Upgrade failed, this process carries on: cannot start %s (%s)",
                      sys.executable, exc.strerror or exc)
            return None
        ready = _wait_ready(notify, child, timeout)
        if ready is None:
            _stop(child)
            return None
        return ready
    finally:
        notify.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(notify: socket.socket, child: subprocess.Popen[bytes], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        code = child.poll()
        if code is not None:
            log.error("Upgrade failed, this process carries on: the new process exited with %d "
                      "(its messages are above)", code)
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            log.error("Upgrade failed, this process carries on: the new process was not ready "
                      "within %g s", timeout)
            return None
        readable, _, _ = select.select([notify], [], [], min(left, 0.2))
        if not readable:
            continue
        fields = dict(line.split("=", 1) for line in notify.recv(4096).decode(
            "utf-8", "replace").splitlines() if "=" in line)
        if fields.get("READY") == "1":
            return int(fields.get("MAINPID", child.pid))


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
