"""The Server: the one long-lived object (listeners, logs, command pipe, current runtime).

``Listening``, ``open_listeners`` and ``StartupError`` live in :mod:`ocsi.listeners` and are
re-exported here.

A reload builds a complete new :class:`~ocsi.runtime.Runtime` and swaps one reference; requests
in flight finish on the runtime they started with, which is cleaned up afterwards. Listeners
belong to the server and survive reloads (ports are read at start, as Ocsigen does). What a
reload or ``ssl:reload`` does to the certificates, and ACME's manager, are
:mod:`ocsi.servercerts`'s.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

from . import privileges
from .commands import CommandPipe, Commands
from ._config.errors import ConfigError
from ._config.settings import PortSpec, ServerSettings
from ._extensions.loader import new_plugin_manager
from ._http.access import AccessRecord
from ._http.connection import ConnectionManager
from .listeners import Listening, StartupError, announce, open_listeners
from .quic import alt_svc, serve_quic, with_alt_svc
from .logs import NOTICE, Logs
from .replies import Reply
from .runtime import Runtime, build_runtime
from .servercerts import (acme_manager, certificate_chooser, renew_certificates,
                          reread_certificates, switched_acme)
from .serverstats import ServerSampler, publish_counters
from .serverview import ServerView
from .stats import STATS
from .sni import CertificateChooser
from .systemd import Notifier, notifier
from .upgrade import start_successor, successor_arguments
from .watch import ConfigWatcher

if TYPE_CHECKING:
    from ._acme.manager import AcmeManager
    from ._http.request import Request
    from ._http.response import Response

log = logging.getLogger("ocsi.main")

__all__ = ["Listening", "Server", "StartupError", "open_listeners"]


def _settle_gc() -> None:
    """Move everything start-up created out of the collector's sight.

    Modules, lxml trees and plugin objects live as long as the process; without this every
    full collection walks them again and stalls requests for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()


class Server:
    def __init__(
        self,
        config_path: str,
        *,
        config_data: bytes | None = None,
        silent: bool = False,
        verbosity: int = 0,
        pm: pluggy.PluginManager | None = None,
        force_console_logs: bool = False,
        pipe_path: str | None = None,
        install_signals: bool = True,
        watch: bool = False,
        runtime: Runtime | None = None,
        listening: Listening | None = None,
        worker: int | None = None,
    ) -> None:
        self.config_path = config_path
        #: This process's index among the workers (``None``: no workers).
        self.worker = worker
        #: What lifecycle hooks are given: the public, typed face of this server.
        self.view = ServerView(self)
        self.config_data = config_data
        self.silent = silent
        self.verbosity = verbosity
        self.pm = pm or new_plugin_manager()
        self.force_console_logs = force_console_logs
        self.pipe_path_override = pipe_path
        self.install_signals = install_signals
        self.watch = watch
        self.watcher: ConfigWatcher | None = None
        #: Picks each TLS connection's certificate (``None`` without HTTPS listeners).
        self.certificates: CertificateChooser | None = None
        #: Certificates from an ACME CA (``<acme>``), started once the listeners are open.
        self.acme: AcmeManager | None = None
        #: The listeners' TLS context (where a ClientHello arrives), for ACME set up on reload.
        self._tls: ssl.SSLContext | None = None
        #: A runtime built in Python (:mod:`ocsi.embed`) instead of from a configuration file.
        self._given_runtime = runtime
        #: Sockets bound by someone else (the worker master): served instead of binding ``<port>``.
        self._given_listening = listening
        self.runtime: Runtime = None  # type: ignore[assignment]  # built by start()
        self.logs: Logs | None = None
        self.manager: ConnectionManager | None = None
        self.listeners: list[asyncio.AbstractServer] = []
        #: ``(PortSpec, actual port)`` of every open listening socket.
        self.bound: list[tuple[PortSpec, int]] = []
        #: The listening sockets themselves (handed to a successor by ``upgrade``).
        self.listening_sockets: list[socket.socket] = []
        #: Senders of ``reply=… shutdown`` (``ocsi shutdown``), told when the server has stopped.
        self.shutdown_replies: list[Reply] = []
        #: A successor took the listening sockets over (``upgrade``): this process drains.
        self.upgraded = False
        self.pipe: CommandPipe | None = None
        self.commands = Commands(self)
        self.reloads = 0
        self._stopped: asyncio.Event | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        #: systemd's ``Type=notify`` (a no-op without ``$NOTIFY_SOCKET``); a worker's master
        #: speaks for it.
        self.notifier = notifier() if listening is None else Notifier(None)
        self._reload_lock: asyncio.Lock | None = None
        self._observers: list[Callable[..., object]] = []
        #: The connections and certificates, for the process's counters (:mod:`ocsi.stats`).
        self._sampler = ServerSampler(self)
        #: Counts each answer (``STATS.finished``, bound once: it runs per request).
        self._count = STATS.finished
        self.loop: asyncio.AbstractEventLoop | None = None
        #: HTTP/3 endpoints (:mod:`ocsi.quic`), and the ``Alt-Svc`` of each port they serve.
        self.quic: list[Any] = []
        self._alt_svc: dict[int, str] = {}

    @property
    def settings(self) -> ServerSettings:
        return self.runtime.settings

    @property
    def ports(self) -> list[int]:
        return [p for _, p in self.bound]

    # -- start ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the first runtime, open logs, listeners and the pipe. Raises on any failure."""
        self.loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        # Terminal logging while the configuration (which names the log files) is built, so
        # that extension loading is visible with -vv.
        bootstrap = Logs(None, self.silent, self.verbosity, keep=True)
        try:
            if self._given_runtime is not None:
                runtime = self._given_runtime
                await runtime.provision()
            else:
                runtime = await build_runtime(self.pm, self.config_path, self.config_data)
        finally:
            bootstrap.close()
        s = runtime.settings
        logdir = None if self.force_console_logs else s.logdir
        try:
            self.logs = Logs(logdir, self.silent, self.verbosity, s.accesslogformat,
                             None if self.force_console_logs else s.syslog, log_format=s.logformat)
        except OSError as exc:
            await runtime.cleanup()
            raise StartupError(f"can't open log file: {exc}", exit_code=100) from None
        self.logs.access.worker = self.worker
        self.logs.replay(bootstrap.kept)  # a certificate expiring soon, say, into warnings.log
        self.runtime = runtime
        STATS.bind(runtime.pipeline)
        self._set_observers()
        self.acme = acme_manager(s)
        self.manager = ConnectionManager(self._app(runtime), s.limits(), self._access)
        try:
            await self._listen(s)
        except BaseException:
            await self._close_listeners()
            await runtime.cleanup()
            raise
        pipe = self.pipe_path_override or s.commandpipe
        if pipe:
            self.pipe = CommandPipe(pipe, self.commands)
            try:
                self.pipe.open()
            except OSError as exc:
                log.warning("Cannot create the command pipe %s (%s). I will continue without.",
                            pipe, exc.strerror)
                self.pipe = None
        owned = [p for p in (self.pipe.path if self.pipe else None,) if p]
        if s.logdir and self.logs is not None and self.logs.logdir:
            owned += [os.path.join(s.logdir, f) for f in ("access.log", "warnings.log", "errors.log")]
        privileges.drop(s.user, s.group, owned,
                        [self.logs.logdir] if self.logs is not None and self.logs.logdir else [])
        if self.acme is not None:
            self.acme.start()
        if self.install_signals and threading.current_thread() is threading.main_thread():
            self._signals()
        self._schedule_flush()
        if self.watch:
            self.watcher = ConfigWatcher(self)
            self.watcher.start()
        if self._given_listening is None:  # a worker's master says it once for all
            announce(self.bound)
        STATS.add_sampler(self._sampler)
        self.runtime.extensions.hook.ocsi_server_started(server=self.view)
        self.notifier.ready(self._status())
        if self.notifier.watchdog_interval is not None:
            self._ping_watchdog()
        _settle_gc()

    async def _listen(self, s: ServerSettings) -> None:
        assert self.manager is not None and self.loop is not None
        listening = self._given_listening or open_listeners(s)
        self._tls = listening.tls
        self.certificates = certificate_chooser(listening.tls, s, self.acme)
        try:
            for spec, sock in listening.sockets:
                port = sock.getsockname()[1]
                factory = self.manager.protocol_factory(port, spec.https, spec.h2c)
                srv = await self.loop.create_server(factory, sock=sock, backlog=1024,
                                                    ssl=listening.tls if spec.https else None)
                self.listeners.append(srv)
                self.listening_sockets.append(sock)
                self.bound.append((spec, port))
            self._alt_svc = {s.getsockname()[1]: alt_svc(s.getsockname()[1])
                             for _, s in listening.quic}
            if listening.quic:  # HTTP/3: worker 0 only (ocsi.quic says why)
                self.manager.app = self._app(self.runtime)
                self.quic = await serve_quic(
                    self.manager, listening.quic, lambda: self.runtime.settings,
                    self.worker in (None, 0),
                    lambda: self.acme.serving if self.acme is not None else None)
                if self._given_listening is None:  # handed over by upgrade
                    self.listening_sockets += [sock for _, sock in listening.quic]
        except BaseException:
            listening.close()  # those not handed to the loop yet
            raise

    def _app(self, runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
        """What answers requests: the runtime, behind ACME's http-01 answers when configured."""
        if self.acme is None:
            return with_alt_svc(runtime.respond, self._alt_svc)
        return with_alt_svc(self.acme.serving.wrap(runtime.respond), self._alt_svc)

    def _signals(self) -> None:
        loop = self.loop
        assert loop is not None
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
            loop.add_signal_handler(signal.SIGTERM, self.request_shutdown)
            loop.add_signal_handler(signal.SIGINT, self.request_shutdown)
            loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)
            loop.add_signal_handler(signal.SIGUSR2, lambda: loop.create_task(self.upgrade()))
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass

    def _status(self) -> str:
        """systemd's ``STATUS=``: what ``systemctl status`` shows."""
        ports = ", ".join(spec.describe(port) for spec, port in self.bound)
        return f"Serving on {ports}; {self.reloads} reload(s)"

    def _ping_watchdog(self) -> None:
        """``WATCHDOG=1`` from the event loop: a loop that stops turning misses it, and systemd
        restarts the service (``WatchdogSec=``)."""
        assert self.loop is not None and self.notifier.watchdog_interval is not None
        if self._shutdown_task is None:
            self.notifier.watchdog()
            self.loop.call_later(self.notifier.watchdog_interval, self._ping_watchdog)

    def _schedule_flush(self) -> None:
        assert self.loop is not None
        self._flush_handle = self.loop.call_later(1.0, self._schedule_flush)  # whatever happens
        publish_counters(self.worker)
        if self.logs is not None:
            try:
                self.logs.access.flush()
            except Exception:  # noqa: BLE001 - the next second tries again
                log.exception("flushing the access log failed")

    def _set_observers(self) -> None:
        self._observers = self.runtime.extensions.functions("ocsi_request_finished")

    def _access(self, rec: AccessRecord) -> None:
        self._count(rec)
        if self.logs is not None:
            self.logs.access.write(rec)
        if self._observers and rec.request is not None:
            for fn in self._observers:
                try:
                    fn(request=rec.request, status=rec.status, sent=rec.bytes_sent, duration=rec.duration)
                except Exception:  # noqa: BLE001
                    log.exception("ocsi_request_finished failed")

    # -- reload ----------------------------------------------------------------------------------
    async def reload(self, path: str | None = None) -> bool:
        """Build a new runtime from ``path`` (once: default, the file the server started
        with) and swap it in.

        On any error the running configuration stays and the located error is logged.
        """
        assert self._reload_lock is not None
        if self._given_runtime is not None and path is None:
            log.warning("reload: this server was built in Python, there is no file to re-read")
            return False
        # a one-liner's document: no file to name, the watcher said what changed
        generated = self.config_data is not None and path is None
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                return await self._reload(path, generated)
            finally:
                self.notifier.ready(self._status())

    async def _reload(self, path: str | None, generated: bool) -> bool:
        """One reload, under the reload lock; whether the new configuration is live.
        ``generated``: a one-liner's document, which has no file to name (the watcher said
        what changed)."""
        if not generated:
            log.log(NOTICE, "Reloading config file %s", path or self.config_path)
        old = self.runtime
        try:
            data = None if path is not None else self.config_data
            new = await build_runtime(self.pm, path or self.config_path, data)
        except ConfigError as exc:
            log.error("Reload failed, configuration unchanged: %s", exc)
            STATS.failed_reloads += 1
            old.extensions.hook.ocsi_reloaded(server=self.view, ok=False, error=exc)
            return False
        except Exception as exc:  # noqa: BLE001
            log.exception("Reload failed, configuration unchanged")
            STATS.failed_reloads += 1
            old.extensions.hook.ocsi_reloaded(server=self.view, ok=False, error=exc)
            return False
        # ``reload FILE`` loads FILE once; a plain ``reload`` reads the -c file again, as
        # in Ocsigen (config_path is left as it is)
        if [(p.address, p.port, p.https) for p in new.settings.ports] != [
                (p.address, p.port, p.https) for p in old.settings.ports]:
            log.warning("<port> changes take effect at the next restart, not on reload")
        self.runtime = new
        STATS.bind(new.pipeline)
        STATS.reloads += 1
        renew_certificates(self.certificates, new.settings.host_certificates, new.settings.ssl)
        self.acme = await switched_acme(self.acme, old.settings, new.settings, self._tls,
                                        self.certificates)
        assert self.manager is not None
        self.manager.app = self._app(new)
        self.manager.limits = new.settings.limits()
        self.manager.reloaded()
        if self.logs is not None:
            self.logs.set_access_format(new.settings.accesslogformat)
            self.logs.set_log_format(new.settings.logformat)
        self._set_observers()
        self.reloads += 1
        asyncio.get_running_loop().create_task(old.retire())
        if generated:
            log.log(NOTICE, "%s: reloaded", self.config_path)
        else:
            log.log(NOTICE, "Config file reloaded")
        new.extensions.hook.ocsi_reloaded(server=self.view, ok=True, error=None)
        return True

    async def reload_certificates(self) -> bool:
        """``ssl:reload``: read the certificates again, the configuration otherwise unchanged."""
        assert self._reload_lock is not None
        async with self._reload_lock:
            if not reread_certificates(self.runtime.settings, self.certificates):
                return False
            if self.manager is not None:
                self.manager.reloaded()
            log.log(NOTICE, "Certificates reloaded")
            return True

    async def upgrade(self) -> bool:
        """``upgrade`` / SIGUSR2: hand the listening sockets to a new process started from the
        code installed now; once it is ready, stop accepting and drain (see :mod:`ocsi.upgrade`).
        Whether the successor took over."""
        arguments = successor_arguments()
        if arguments is None or self._given_listening is not None:
            log.warning("upgrade: only a server started by the ocsi command can be upgraded")
            return False
        if self._shutdown_task is not None or self.upgraded:
            return False
        fds = [sock.fileno() for sock in self.listening_sockets if sock.fileno() >= 0]
        pid = await asyncio.to_thread(start_successor, arguments, fds,
                                      max(30.0, self.settings.shutdowntimeout or 0.0))
        if pid is None:
            return False
        log.log(NOTICE, "Upgrade: process %d is serving; this one stops accepting and drains", pid)
        self.upgraded = True
        for endpoint in self.quic:  # the successor alone reads the UDP sockets from now on
            endpoint.close()
        if self.pipe is not None:  # the successor reads it from now on
            self.pipe.close(keep=True)
            self.pipe = None
        self.request_shutdown()
        return True

    def reopen_logs(self) -> bool:
        """Open the log files anew; whether every one could be."""
        return self.logs.reopen() if self.logs is not None else True

    # -- shutdown --------------------------------------------------------------------------------
    def request_shutdown(self, timeout: float | None | object = ...) -> None:
        """Start a graceful shutdown (idempotent); ``timeout`` defaults to ``<shutdowntimeout>``."""
        if self._shutdown_task is None and self.loop is not None:
            t = self.settings.shutdowntimeout if timeout is ... else timeout
            self._shutdown_task = self.loop.create_task(self.shutdown(t))  # type: ignore[arg-type]  # ... replaced above

    async def _close_listeners(self) -> None:
        for srv in self.listeners:
            srv.close()
        self.listeners = []

    async def shutdown(self, timeout: float | None = 10.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``timeout``), then close all."""
        started = time.monotonic()
        self.notifier.stopping()
        log.log(NOTICE, "Shutting down%s", "" if timeout is None else f" (at most {timeout:g} s)")
        await self._close_listeners()
        if self.watcher is not None:
            self.watcher.stop()
        if self.acme is not None:
            await self.acme.stop()
        try:
            if self.runtime is not None:
                self.runtime.extensions.hook.ocsi_server_stopping(server=self.view)
        except Exception:  # noqa: BLE001
            log.exception("ocsi_server_stopping failed")
        if self.manager is not None:
            await self.manager.shutdown(timeout)
        for endpoint in self.quic:  # after its connections have said goodbye
            endpoint.close()
        if self.pipe is not None:
            self.pipe.close()
        if self.runtime is not None:
            await self.runtime.cleanup()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        publish_counters(self.worker)
        STATS.remove_sampler(self._sampler)
        log.info("Stopped after %.2f s", time.monotonic() - started)
        if self.logs is not None:
            self.logs.close()
        for reply in self.shutdown_replies:
            reply.done("stopped")
        self.shutdown_replies = []
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()

    async def serve(self) -> None:
        """Start and run until shut down."""
        await self.start()
        await self.wait_stopped()
