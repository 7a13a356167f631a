"""``ocsi upgrade`` (and SIGUSR2): a new process takes the listening sockets over while a client
keeps connecting; no connection is refused or reset, no request fails, the pid file follows."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

BASE = '<findlib path="{exts}"/><extension findlib-package="ocsi-ext-testbase"/>'


class Load(threading.Thread):
    """New connection per request until stopped (at most ``limit`` requests or 60 s)."""

    def __init__(self, port: int, limit: int = 20000) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.limit = limit
        self.stop = threading.Event()
        self.pids: dict[int, int] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + 60
        for _ in range(self.limit):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/pid/", headers={"Connection": "close"})
                r = conn.getresponse()
                body = r.read()
                conn.close()
                if r.status != 200:
                    self.failures.append(f"status {r.status}")
                    continue
                pid = int(body)
                self.pids[pid] = self.pids.get(pid, 0) + 1
            except Exception as exc:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(exc))


def ocsi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocsi", *args], capture_output=True, text=True,
                          timeout=90)


@pytest.mark.parametrize("how, workers", [("command", 1), ("signal", 1), ("command", 2)])
def test_upgrade_under_load(ocsi_process, exts_path, tmp_path, how, workers):
    pidfile = tmp_path / "ocsi.pid"
    proc = ocsi_process(BASE.format(exts=exts_path) + '<host><site path="pid"><pid/></site></host>',
                        args=["-p", str(pidfile), "--workers", str(workers)])
    old = proc.proc.pid
    load = Load(proc.port)
    load.start()
    try:
        while not load.pids and not load.failures:
            time.sleep(0.05)
        if how == "command":
            r = ocsi("upgrade", "-c", proc.config_path)
            assert r.returncode == 0, r.stderr
        else:
            proc.proc.send_signal(signal.SIGUSR2)
        assert proc.wait(30) == 0  # the old one drained and left
        new = int(pidfile.read_text())
        assert new != old
        served_before = sum(load.pids.values())
        deadline = time.monotonic() + 10
        while sum(load.pids.values()) < served_before + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        load.stop.set()
        load.join(30)
    try:
        assert load.failures == []
        assert sum(load.pids.values()) > 50
        answering = set(load.pids)
        assert len(answering) >= 2  # the old process(es), then the new one(s)
        # the successor answers the pipe and stops cleanly
        r = ocsi("shutdown", "-c", proc.config_path)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 15
        while _alive(new) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(new)
    finally:
        if _alive(new := int(pidfile.read_text())) and new != old:
            os.kill(new, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our child that exited) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_successor_that_cannot_start_leaves_the_server_running(ocsi_process, exts_path, tmp_path):
    proc = ocsi_process(BASE.format(exts=exts_path) + '<host><site path="pid"><pid/></site></host>')
    path = Path(proc.config_path)
    path.write_text(path.read_text().replace("<pid/>", "<no-such-element/>"))
    r = ocsi("upgrade", "-c", proc.config_path)
    assert r.returncode == 1
    assert "Upgrade failed, this process carries on" in r.stderr, r.stderr
    assert int(proc.get("/pid/").body) == proc.proc.pid
