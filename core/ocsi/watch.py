"""Hot reload: watch the configuration files, ``<extconf>`` directories and ``<library>`` sources.

watchdog reports changes from its own thread; events are debounced (editors write a file in
several steps) and turned into one ``Server.reload()`` on the event loop. The watched set is
recomputed after every reload, since a reload can add files.

Private: not part of the extension API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .logs import NOTICE

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("ocsi.main")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: ConfigWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [os.fsdecode(p) for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        concerned = [p for p in paths if self.watcher.concerns(p)]
        if concerned:
            self.watcher.changed(concerned[0])


class ConfigWatcher:
    def __init__(self, server: Server, delay: float = 0.3) -> None:
        self.server = server
        self.delay = delay
        self.loop: asyncio.AbstractEventLoop | None = None
        self.observer: Any = None
        self._files: set[str] = set()
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        self._pending: asyncio.TimerHandle | None = None
        #: What changed since the last reload (for its log line).
        self._changed: set[str] = set()

    def concerns(self, path: str) -> bool:
        path = os.path.abspath(path)
        with self._lock:
            return path in self._files or os.path.dirname(path) in self._dirs

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._rewatch()

    def _rewatch(self) -> None:
        config = self.server.runtime.config
        files = {os.path.abspath(f) for f in config.files if not f.startswith("<")}
        dirs = {os.path.abspath(d) for d in config.dirs}
        with self._lock:
            self._files, self._dirs = files, dirs
        watch = {os.path.dirname(f) for f in files} | dirs
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(5)
        self.observer = Observer()
        handler = _Handler(self)
        for d in sorted(watch):
            if os.path.isdir(d):
                self.observer.schedule(handler, d, recursive=False)
        self.observer.daemon = True
        self.observer.start()

    def changed(self, path: str = "") -> None:
        """Called from watchdog's thread."""
        if path:
            with self._lock:
                self._changed.add(os.path.abspath(path))
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._debounce)

    def _debounce(self) -> None:
        assert self.loop is not None
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self.loop.call_later(self.delay, self._fire)

    def _fire(self) -> None:
        self._pending = None
        assert self.loop is not None
        self.loop.create_task(self._reload())

    async def _reload(self) -> None:
        with self._lock:
            changed, self._changed = sorted(self._changed), set()
        code = [p for p in changed if p.endswith(".py")]
        if code and len(code) == len(changed):
            # an application's (or a <library>'s) source: the code is imported anew
            log.log(NOTICE, "%s changed: re-importing the application", ", ".join(
                os.path.relpath(p) if not os.path.relpath(p).startswith("..") else p for p in code))
        else:
            log.log(NOTICE, "Configuration changed on disk")
        if await self.server.reload():
            self._rewatch()

    def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(5)
            self.observer = None
