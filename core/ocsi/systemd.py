"""systemd integration: readiness notifications (``Type=notify``) and socket activation.

**Notifications** are one datagram of ``KEY=VALUE`` lines to the ``AF_UNIX`` socket named by
``$NOTIFY_SOCKET`` (sd_notify(3)); the protocol is that one ``sendto``, so it is written here
rather than depending on libsystemd's Python binding (which needs the C library and its headers
to build). Without ``$NOTIFY_SOCKET`` every call is a no-op costing one attribute test.

**Socket activation** (sd_listen_fds(3)): when ``$LISTEN_PID`` is this process, descriptors 3 to
``3 + $LISTEN_FDS - 1`` are listening sockets systemd (or ``systemd-socket-activate``) bound for
us, so ocsi can serve ports below 1024 without starting as root. :func:`listen_fds` takes them
once; :mod:`ocsi.listeners` matches them to the ``<port>`` elements they serve.

Both sets of variables are removed from the environment once read, as libsystemd does with
``unset_environment``: worker processes and applications must not notify or take the sockets
in the server's name.

Private: not part of the extension API.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["Notifier", "listen_fds", "notifier"]

#: The first descriptor systemd passes (SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3


class Notifier:
    """Sends state changes to the service manager; every method is safe to call without one."""

    def __init__(self, address: str | None) -> None:
        if address and address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address or None
        self._sock: socket.socket | None = None
        #: Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec``), or ``None``.
        self.watchdog_interval: float | None = None

    @property
    def active(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram with ``fields`` (``"READY=1"``, ``"STATUS=…"``); whether it went."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode("utf-8", "replace"), self.address)
        except OSError:
            return False  # the manager went away: nothing to tell, nothing to fail
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        """Before a reload: systemd then waits for the next ``READY=1`` (``Type=notify-reload``
        and ``systemctl reload`` with ``ExecReload=``)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=Reloading the configuration")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=Shutting down")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def notifier() -> Notifier:
    """The process's notifier, from ``$NOTIFY_SOCKET`` (and ``$WATCHDOG_USEC`` when it is for
    this process); the variables are removed so children do not inherit them."""
    n = Notifier(os.environ.pop("NOTIFY_SOCKET", None))
    usec = os.environ.pop("WATCHDOG_USEC", None)
    pid = os.environ.pop("WATCHDOG_PID", None)
    if n.active and usec and usec.isdigit() and int(usec) > 0 and (pid is None or pid == str(os.getpid())):
        n.watchdog_interval = int(usec) / 2e6
    return n


#: The descriptors a running ocsi hands to its successor (``ocsi upgrade``), comma-separated:
#: the same idea as ``LISTEN_FDS`` without the need to renumber them from 3.
HANDOVER_FDS = "OCSI_LISTEN_FDS"


def listen_fds() -> list[tuple[socket.socket, str]]:
    """The sockets passed to this process, each with its ``FileDescriptorName=`` (``""`` when
    unnamed); empty when none were passed, or when they were meant for another process."""
    handed = os.environ.pop(HANDOVER_FDS, None)
    if handed:
        out = []
        for text in handed.split(","):
            fd = int(text)
            os.set_inheritable(fd, False)
            out.append((socket.socket(fileno=fd), ""))
        return out
    pid = os.environ.pop("LISTEN_PID", None)
    count = os.environ.pop("LISTEN_FDS", None)
    names = os.environ.pop("LISTEN_FDNAMES", "")
    if pid != str(os.getpid()) or not count or not count.isdigit():
        return []
    n = int(count)
    labels = names.split(":") if names else []
    out = []
    for i in range(n):
        fd = LISTEN_FDS_START + i
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        out.append((sock, labels[i] if i < len(labels) else ""))
    return out
