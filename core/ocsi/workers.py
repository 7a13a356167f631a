"""Worker processes: one master and N forked workers serving the master's listening sockets.

With ``<workers>N</workers>`` (or ``--workers N``) above 1, ``ocsi`` starts as a master. It
does everything a single server could fail at, so errors exit with the same codes: it builds
the configuration, opens the log files, binds every ``<port>`` (and loads the TLS key, so a
password is asked once) and creates the command pipe. Then it forks N workers; each is an
ordinary :class:`~ocsi.server.Server` serving the inherited sockets, building its own runtime
and writing its own lines to the same log files. Workers have no watcher and no public command
pipe. What the child does after ``fork``, and how the workers share the sockets, is in
:mod:`ocsi.workerprocess`.

The master is synchronous (``select`` on the command pipe and a signal wake-up pipe) because
forking from inside a running event loop would hand the loop's state to the children.

Commands and signals:

- ``reload`` / SIGHUP: the master builds the new configuration itself (as ``ocsi --check``);
  on error it logs the located message and nothing else happens; otherwise it sends SIGHUP to
  every worker. ``reload FILE`` goes to the workers' private FIFOs (a signal carries no name).
- ``shutdown [N|notimeout]`` is written to every worker's private FIFO (so the timeout is
  theirs); SIGTERM / SIGINT become SIGTERM. Workers still running ``KILL_GRACE`` seconds after
  the timeout are killed; the master exits 0 once none is left.
- ``reopen_logs`` / SIGUSR1: the master reopens its logs and sends SIGUSR1 to every worker.
- Any other line (``clearcache``, ``gc``, ``logs:…``, extension commands) is written to every
  worker's private FIFO, in a temporary directory the master owns and removes at exit.

A worker that dies is restarted, at most ``RESTARTS_PER_MINUTE`` times a minute.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections import deque

from . import privileges
from .commands import INVALID, open_fifo, remove_fifo, shutdown_timeout, split_lines
from .replies import Reply, conclude, received, watching
from .statsfiles import MasterStats
from .systemd import Notifier, notifier
from .upgrade import start_successor, successor_arguments
from ._config.errors import ConfigError
from ._config.settings import ServerSettings
from ._extensions.loader import new_plugin_manager
from .logs import NOTICE, Logs
from .runtime import build_configuration
from .listeners import Listening, StartupError, open_listeners
from .workerprocess import MASTER_SIGNALS, Worker, describe, fork_worker

log = logging.getLogger("ocsi.master")

RESTARTS_PER_MINUTE = 5
#: Seconds after the shutdown timeout before workers that are still running get SIGKILL.
KILL_GRACE = 5.0


def _noop(signum: int, frame: object) -> None:
    """Signals only need to wake ``select`` up; ``set_wakeup_fd`` says which one came."""


class Master:
    """The master process: does at start what a single server could fail at, then forks the
    workers and supervises them."""

    def __init__(self, config_path: str, count: int, *, silent: bool, verbosity: int) -> None:
        self.config_path = config_path
        #: The file of a ``reload FILE`` still in force (None: ``config_path``'s).
        self.running_path: str | None = None
        self.count = count
        self.silent = silent
        self.verbosity = verbosity
        self.settings = ServerSettings()
        self.notifier = Notifier(None)
        self._next_ping = 0.0
        self.logs: Logs | None = None
        self.listening: Listening | None = None
        self.pipe_fd: int | None = None
        self.pipe_path: str | None = None
        self._pipe_buffer = b""
        #: Senders of ``reply=… shutdown``, told when every worker has stopped.
        self._shutdown_replies: list[Reply] = []
        self.fifo_dir: str | None = None
        self.workers: list[Worker] = []
        self._wake: tuple[int, int] | None = None
        self._restarts: deque[float] = deque()
        self._dead: list[Worker] = []
        self._throttled = False
        self._stopping = False
        self._deadline: float | None = None
        #: Dead workers' counters and the master's own (:mod:`ocsi.statsfiles`).
        self.stats: MasterStats | None = None

    def run(self) -> int:
        """Start, fork the workers, supervise them until shut down; the process exit code."""
        try:
            self._start()
        except (ConfigError, StartupError) as exc:
            print(f"ocsi: Fatal - {exc}", file=sys.stderr)
            self._close()
            return exc.exit_code
        except BaseException:
            self._close()
            raise
        try:
            for worker in self.workers:
                self._spawn(worker)
            self.notifier.ready(f"{self.count} workers serving")
            self._loop()
        except BaseException:
            self._signal_workers(signal.SIGTERM)  # never leave orphans behind
            raise
        finally:
            self._close()
        return 0

    # -- start -----------------------------------------------------------------------------------
    def _start(self) -> None:
        self.notifier = notifier()  # before any fork: workers must not notify in our name
        self._next_ping = time.monotonic()
        bootstrap = Logs(None, self.silent, self.verbosity)
        try:
            config = build_configuration(new_plugin_manager(), self.config_path)
        finally:
            bootstrap.close()
        s = self.settings = config.settings
        try:
            self.logs = Logs(s.logdir, self.silent, self.verbosity, s.accesslogformat, s.syslog,
                             log_format=s.logformat)
        except OSError as exc:
            raise StartupError(f"can't open log file: {exc}", exit_code=100) from None
        self.listening = open_listeners(s, self.count)
        if s.commandpipe:
            try:
                self.pipe_fd, _ = open_fifo(s.commandpipe)
                self.pipe_path = s.commandpipe
            except OSError as exc:
                log.warning("Cannot create the command pipe %s (%s). I will continue without.",
                            s.commandpipe, exc.strerror)
        self.fifo_dir = tempfile.mkdtemp(prefix="ocsi-workers-")
        os.mkdir(os.path.join(self.fifo_dir, "stats"), 0o700)
        self.stats = MasterStats(os.path.join(self.fifo_dir, "stats"))
        self.workers = [self._new_worker(i) for i in range(self.count)]
        privileges.drop(s.user, s.group, self._owned())
        self._install_signals()
        log.info("Master process %d: %d workers", os.getpid(), self.count)
        self.listening.announce()

    def _new_worker(self, index: int) -> Worker:
        assert self.fifo_dir is not None
        path = os.path.join(self.fifo_dir, f"worker-{index}.cmd")
        os.mkfifo(path, 0o600)
        return Worker(index, path, os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC))

    def _owned(self) -> list[str]:
        """Files handed to ``<user>``/``<group>``, so workers and reopen_logs can use them."""
        s = self.settings
        owned = [w.fifo for w in self.workers] + [self.fifo_dir or ""]
        if self.stats is not None:
            owned.append(self.stats.directory)
        if self.pipe_fd is not None and s.commandpipe:
            owned.append(s.commandpipe)
        if self.logs is not None and self.logs.logdir:
            owned += [os.path.join(self.logs.logdir, f)
                      for f in ("access.log", "warnings.log", "errors.log")]
        return [p for p in owned if p]

    def _install_signals(self) -> None:
        self._wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for sig in MASTER_SIGNALS:
            signal.signal(sig, _noop)
        signal.set_wakeup_fd(self._wake[1], warn_on_full_buffer=False)

    # -- workers ---------------------------------------------------------------------------------
    def _spawn(self, worker: Worker) -> None:
        worker.pid = fork_worker(self, worker)
        log.info("Worker %d started (pid %d)", worker.index, worker.pid)

    def descriptors(self) -> list[int]:
        """The master's own descriptors, which a forked worker closes: the signal wake-up
        pipe, the command pipe and every worker's FIFO."""
        fds = [*(self._wake or ()), self.pipe_fd, *(w.fd for w in self.workers)]
        return [fd for fd in fds if fd is not None]

    def _signal_workers(self, sig: int) -> None:
        for worker in self.workers:
            if worker.pid:
                try:
                    os.kill(worker.pid, sig)
                except ProcessLookupError:
                    pass

    def _forward(self, line: str) -> None:
        """Write a command line to every worker's private FIFO."""
        data = line.encode() + b"\n"
        for worker in self.workers:
            try:
                os.write(worker.fd, data)
            except BlockingIOError:
                log.error("Worker %d does not read its commands; %r not delivered",
                          worker.index, line)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = next((w for w in self.workers if w.pid == pid), None)
            if worker is None:
                continue
            worker.pid = 0
            if self.stats is not None:
                self.stats.fold(worker.index, pid)
            if self._stopping:
                log.info("Worker %d (pid %d) %s", worker.index, pid, describe(status))
            else:
                log.error("Worker %d (pid %d) %s; restarting it", worker.index, pid,
                          describe(status))
                self._dead.append(worker)

    def _restart_dead(self) -> None:
        """Restart dead workers, at most ``RESTARTS_PER_MINUTE`` a minute (a crash loop must
        not become a fork loop); the others wait for the minute to pass."""
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > 60:
            self._restarts.popleft()
        while self._dead and len(self._restarts) < RESTARTS_PER_MINUTE:
            worker = self._dead.pop(0)
            self._restarts.append(now)
            self._throttled = False
            log.warning("Restarting worker %d", worker.index)
            self._spawn(worker)
            if self.stats is not None:
                self.stats.restarts += 1
                self.stats.save()
        if self._dead and not self._throttled:
            self._throttled = True
            log.error("Workers die too often: %d waiting, next restart in %.0f s",
                      len(self._dead), 60 - (now - self._restarts[0]))

    # -- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        assert self._wake is not None
        wake = self._wake[0]
        while not self._stopping or any(w.pid for w in self.workers):
            fds = [wake] if self.pipe_fd is None or self._stopping else [wake, self.pipe_fd]
            readable, _, _ = select.select(fds, [], [], self._ping_watchdog())
            if wake in readable:
                self._on_signals(wake)
            if self.pipe_fd is not None and self.pipe_fd in readable:
                self._read_pipe()
            self._reap()
            if not self._stopping:
                self._restart_dead()
            self._kill_if_late()

    def _ping_watchdog(self) -> float:
        """``WATCHDOG=1`` when due; how long the loop may wait (at most 1 s)."""
        interval = self.notifier.watchdog_interval
        if interval is None or self._stopping:
            return 1.0
        now = time.monotonic()
        if now >= self._next_ping:
            self.notifier.watchdog()
            self._next_ping = now + interval
        return max(0.0, min(1.0, self._next_ping - now))

    def _on_signals(self, fd: int) -> None:
        try:
            received = os.read(fd, 512)
        except BlockingIOError:
            return
        for signum in received:
            if signum == signal.SIGHUP:
                self._reload(None)
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self._stop(self.settings.shutdowntimeout, None)
            elif signum == signal.SIGUSR1:
                self._reopen_logs()
            elif signum == signal.SIGUSR2:
                self._upgrade()
            # SIGCHLD: the loop reaps after every wake-up

    def _read_pipe(self) -> None:
        assert self.pipe_fd is not None
        try:
            data = os.read(self.pipe_fd, 65536)
        except BlockingIOError:
            return
        lines, self._pipe_buffer = split_lines(self._pipe_buffer, data)
        for line in lines:
            try:
                self._command(line)
            except Exception:  # noqa: BLE001 - the pipe must keep working
                log.exception("Uncaught exception after command %r", line.strip())

    # -- commands --------------------------------------------------------------------------------
    def _command(self, line: str) -> None:
        words, reply = received(line)
        if not words:
            return
        with watching(reply):
            ok = self._run_command(words, reply)
        conclude(reply, words[0], ok)

    def _run_command(self, words: list[str], reply: Reply | None) -> bool:
        """One command; whether it was carried out (for the workers' part: handed to them)."""
        head, args = words[0], words[1:]
        if head == "reload":
            return self._reload(args[0] if args else None)
        if head == "shutdown":
            if self._shutdown_command(args) and reply is not None:
                self._shutdown_replies.append(reply)
                return True
            return False
        if head == "reopen_logs":
            return self._reopen_logs()
        if head == "upgrade":
            return self._upgrade()
        self._forward(" ".join(words))
        return True

    def _reload(self, path: str | None) -> bool:
        """Validate the new configuration here first, so a broken one never reaches a worker."""
        self.notifier.reloading()
        try:
            ok = self._check_and_reload(path)
            if self.stats is not None:
                if ok:
                    self.stats.reloads += 1
                else:
                    self.stats.failed_reloads += 1
                self.stats.save()
            return ok
        finally:
            self.notifier.ready(f"{self.count} workers serving")

    def _check_and_reload(self, path: str | None) -> bool:
        target = path or self.config_path
        log.log(NOTICE, "Checking config file %s before reloading the workers", target)
        try:
            config = build_configuration(new_plugin_manager(), target)
        except ConfigError as exc:
            log.error("Reload failed, configuration unchanged: %s", exc)
            return False
        except Exception:  # noqa: BLE001
            log.exception("Reload failed, configuration unchanged")
            return False
        self.settings = config.settings
        # what a restarted worker starts from: FILE until the next plain reload, as the others
        self.running_path = path
        if path is None:
            self._signal_workers(signal.SIGHUP)
        else:
            self._forward(f"reload {path}")
        return True

    def _shutdown_command(self, args: list[str]) -> bool:
        timeout = shutdown_timeout(args, self.settings.shutdowntimeout)
        if timeout is INVALID:
            return False
        self._stop(timeout, " ".join(["shutdown", *args[:1]]))  # type: ignore[arg-type]  # not INVALID: tested above
        return True

    def _stop(self, timeout: float | None, line: str | None) -> None:
        """Stop the workers: ``line`` through their FIFOs, else SIGTERM; kill them when late."""
        if self._stopping:
            return
        self._stopping = True
        self.notifier.stopping()
        self._dead.clear()
        log.log(NOTICE, "Shutting down the workers%s",
                    "" if timeout is None else f" (at most {timeout:g} s)")
        if self.listening is not None:
            self.listening.close()  # so that new connections are refused, not queued
            self.listening = None
        if line is None:
            self._signal_workers(signal.SIGTERM)
        else:
            self._forward(line)
        self._deadline = None if timeout is None else time.monotonic() + timeout + KILL_GRACE

    def _kill_if_late(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            log.error("Workers still running after the shutdown timeout: killing them")
            self._signal_workers(signal.SIGKILL)
            self._deadline = None

    def _upgrade(self) -> bool:
        """Hand the sockets to a new master from the code installed now; once it is ready,
        stop as ``shutdown`` does (see :mod:`ocsi.upgrade`)."""
        arguments = successor_arguments()
        if arguments is None or self.listening is None or self._stopping:
            log.warning("upgrade: nothing to hand over (stopping, or not started by the ocsi command)")
            return False
        # every worker's socket (SO_REUSEPORT: connections queued on each must be accepted by
        # the successor's workers) and the UDP ones, which the successor cannot bind again
        fds = [sock.fileno() for _, sock in self.listening.sockets + self.listening.quic]
        pid = start_successor(arguments, fds, max(30.0, self.settings.shutdowntimeout or 0.0))
        if pid is None:
            return False
        log.log(NOTICE, "Upgrade: master %d is serving; this one stops its workers", pid)
        if self.pipe_fd is not None:  # the successor reads the command pipe from now on
            os.close(self.pipe_fd)
            self.pipe_fd = None
        self._stop(self.settings.shutdowntimeout, "shutdown")
        return True

    def _reopen_logs(self) -> bool:
        ok = self.logs.reopen() if self.logs is not None else True
        self._signal_workers(signal.SIGUSR1)
        return ok

    # -- exit ------------------------------------------------------------------------------------
    def _close(self) -> None:
        if self.listening is not None:
            self.listening.close()
        for worker in self.workers:
            os.close(worker.fd)
        self.workers = []
        if self.fifo_dir is not None:
            shutil.rmtree(self.fifo_dir, ignore_errors=True)
        if self.pipe_fd is not None:
            if self.pipe_path is not None:
                remove_fifo(self.pipe_path, self.pipe_fd)
            os.close(self.pipe_fd)
            self.pipe_fd = None
        for reply in self._shutdown_replies:
            reply.done("stopped")
        self._shutdown_replies = []
        if self._wake is not None:
            signal.set_wakeup_fd(-1)
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        if self.logs is not None:
            log.info("Master stopped")
            self.logs.close()
            self.logs = None


def run_master(config_path: str, count: int, *, silent: bool, verbosity: int) -> int:
    return Master(config_path, count, silent=silent, verbosity=verbosity).run()
