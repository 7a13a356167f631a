"""The counters of every worker, added up for one scrape (``--workers N``).

Each worker counts in its own memory (:mod:`ocsi.stats`); nothing is shared on the request
path. Once a second (and when it stops) a worker whose configuration exports metrics writes
its :meth:`~ocsi.stats.Stats.snapshot` to ``worker-INDEX-PID.json`` in the master's private
directory (``OCSI_STATS_DIR``, removed with the master). The worker that answers a scrape
writes its own file first, then adds its counters to the others' last files: any number a
scrape has shown is in a file, so the master's fold keeps it.

A restart must never make a sum go backwards, though the dead worker's memory is gone and its
successor starts from zero. When the master reaps a worker it *folds* the dead worker's last
file into ``retired.json`` (counters and histograms only, gauges died with it), records the
file's name there as folded, and only then removes the file. A reader lists and reads the
worker files first and ``retired.json`` after, skipping files it names: a file removed before
the listing was folded before it too, and a file read and folded meanwhile is counted once,
through ``retired.json``. What a worker counted after its last write (under a second, and
never shown by a scrape) is lost with it, which lowers no sum a scrape has shown.

The master also writes what only it knows there: worker restarts, and the reloads it made
(every worker reloads, so their own counts would be multiplied by N).

Private: not part of the extension API. (``ocsi`` exports what extensions use.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from typing import Any

from .stats import Snapshot, counters_only, merge

__all__ = ["ENV", "publish", "collect", "MasterStats"]

log = logging.getLogger("ocsi.stats")

#: The environment variable that gives a worker the directory.
ENV = "OCSI_STATS_DIR"
RETIRED = "retired.json"
#: Folded names remembered (a reader only needs those folded during its own read).
KEEP_FOLDED = 1024
_WORKER_FILE = re.compile(r"worker-(\d+)-(\d+)\.json")


def worker_file(index: int, pid: int) -> str:
    return f"worker-{index}-{pid}.json"


def _write(path: str, data: Any) -> None:
    """Write JSON to ``path`` atomically (a reader sees the old file or the new one)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def publish(directory: str, index: int, snap: Snapshot) -> None:
    """This worker's counters, for the others' scrapes."""
    _write(os.path.join(directory, worker_file(index, os.getpid())), snap)


def collect(directory: str, own: Snapshot) -> Snapshot:
    """The sum for a scrape: ``own`` (this worker's live snapshot), the other workers' last
    files, the dead workers' folded totals, and the master's own counts."""
    me = worker_file(0, os.getpid()).split("-", 2)[2]  # "PID.json"
    others: dict[str, Any] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for name in names:
        if _WORKER_FILE.fullmatch(name) and not name.endswith("-" + me):
            snap = _read(os.path.join(directory, name))
            if isinstance(snap, dict):
                others[name] = snap
    retired = _read(os.path.join(directory, RETIRED)) or {}
    folded = set(retired.get("folded", ()))
    total: Snapshot = merge({}, own)
    for name, snap in others.items():
        if name not in folded:
            merge(total, snap)
    merge(total, retired.get("totals", {}))
    total.update(retired.get("master", {}))
    return total


class MasterStats:
    """The master's side: it folds dead workers and counts restarts and reloads."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.restarts = 0
        self.reloads = 0
        self.failed_reloads = 0
        self._totals: Snapshot = {}
        self._folded: list[str] = []

    def fold(self, index: int, pid: int) -> None:
        """Worker ``index`` (``pid``) has died: its last counts join the totals for good."""
        name = worker_file(index, pid)
        path = os.path.join(self.directory, name)
        snap = _read(path)
        if isinstance(snap, dict):
            merge(self._totals, counters_only(snap))
            self._folded = (self._folded + [name])[-KEEP_FOLDED:]
        self.save()
        with contextlib.suppress(OSError):
            os.unlink(path)

    def save(self) -> None:
        def one(name: str, help: str, value: int) -> dict[str, Any]:  # noqa: A002
            return {"kind": "counter", "help": help, "labels": [], "merge": "sum",
                    "bounds": [], "series": [[value]]}

        master = {
            "ocsi_worker_restarts_total": one(
                "ocsi_worker_restarts_total", "Worker processes restarted after they died",
                self.restarts),
            "ocsi_reloads_total": one("ocsi_reloads_total", "Reloads that took effect",
                                      self.reloads),
            "ocsi_reload_failures_total": one(
                "ocsi_reload_failures_total", "Reloads refused (the configuration stayed)",
                self.failed_reloads),
        }
        try:
            _write(os.path.join(self.directory, RETIRED),
                   {"folded": self._folded, "totals": self._totals, "master": master})
        except OSError as exc:
            log.error("cannot write the workers' counters to %s: %s", self.directory, exc)
