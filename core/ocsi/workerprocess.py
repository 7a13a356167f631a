"""A worker process: what the master forks, and what the child drops, keeps and runs.

The master (:mod:`ocsi.workers`) forks each worker from its synchronous loop. The child drops
what belongs to the master (its signal handlers, its wake-up pipe, the command pipe, every
worker's FIFO, its log files) and runs an ordinary :class:`~ocsi.server.Server` on the
inherited sockets, with its own private FIFO as command pipe.

On Linux each worker has a socket of its own per ``<port>`` address, bound by the master with
``SO_REUSEPORT``, and the kernel spreads new connections over them (:mod:`ocsi.listeners`);
the child closes its copies of the other workers' sockets. The master keeps every socket open:
a worker that dies leaves the connections queued on its socket to its replacement, which is
forked with that same socket. Elsewhere, with ``<reuseport>false</reuseport>`` and for
sockets passed by systemd, every worker accepts on the same sockets.

Kept apart from the master's supervision so that what runs in the child, after ``fork``, is
in one place: nothing here may return into the master's loop.

Private: not part of the extension API.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .statsfiles import ENV as STATS_ENV

if TYPE_CHECKING:
    from .workers import Master

#: The signals the master handles; a worker starts with their default dispositions.
MASTER_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2,
                  signal.SIGCHLD)


@dataclass
class Worker:
    index: int
    #: The worker's private command FIFO, and the master's descriptor on it (opened read-write
    #: and non-blocking, so a write never fails for want of a reader: lines wait for the worker).
    fifo: str
    fd: int
    pid: int = 0


def fork_worker(master: Master, worker: Worker) -> int:
    """Fork ``worker``'s process and return its pid; the child never returns from here."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write the master's pending output again
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 100
        try:
            code = _work(master, worker, parent)
        except BaseException:  # noqa: BLE001 - the child must never return into the master
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)
    return pid


def _work(master: Master, worker: Worker, parent: int) -> int:
    """In the child: drop what belongs to the master, then run an ordinary Server."""
    signal.set_wakeup_fd(-1)
    for sig in MASTER_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Until the Server installs its handlers, a reload or reopen_logs must not kill the
    # worker, nor be lost: the worker may have read the file before the edit the reload is
    # for. They are remembered and done once the Server is live.
    early = _EarlySignals()
    _die_with(parent)
    for fd in master.descriptors():
        os.close(fd)
    if master.logs is not None:
        master.logs.close()
    assert master.listening is not None
    listening = master.listening.for_worker(worker.index)
    master.listening.close_others(listening)
    from .run import run_server

    os.environ["OCSI_WORKER"] = str(worker.index)  # worker 0 orders ACME certificates
    if master.stats is not None:
        os.environ[STATS_ENV] = master.stats.directory
    return run_server(master.running_path or master.config_path, None, silent=master.silent,
                      verbosity=master.verbosity,
                      pipe=worker.fifo, listening=listening, worker=worker.index,
                      started=early.replay)


def _die_with(master: int) -> None:
    """Have Linux send SIGTERM to this worker when the master dies, even by SIGKILL, so that no
    orphan keeps serving the port unsupervised."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != master:  # the master died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


class _EarlySignals:
    """SIGHUP and SIGUSR1 that reach a worker before its Server handles signals itself."""

    def __init__(self) -> None:
        self.reload = False
        self.reopen = False
        signal.signal(signal.SIGHUP, self._hup)
        signal.signal(signal.SIGUSR1, self._usr1)

    def _hup(self, signum: int, frame: object) -> None:
        self.reload = True

    def _usr1(self, signum: int, frame: object) -> None:
        self.reopen = True

    def replay(self, server: Any) -> None:
        """Called once the Server is live (its loop now owns the signals)."""
        if self.reopen:
            server.reopen_logs()
        if self.reload:
            assert server.loop is not None
            server.loop.create_task(server.reload())


def describe(status: int) -> str:
    """How a worker process ended, from its ``waitpid`` status (for the master's log)."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
