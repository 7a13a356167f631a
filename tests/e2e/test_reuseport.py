"""Workers with sockets of their own (``SO_REUSEPORT``, Linux): the kernel spreads connections,
a killed worker's queued connections reach its replacement, a second server cannot join the
port, and ``<reuseport>false</reuseport>`` and socket activation keep one shared socket."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from ocsi.listeners import reuseport_available
from ocsi.testing import free_port

from .test_workers import _answering, _config, _wait_for, _workers

pytestmark = pytest.mark.skipif(not reuseport_available(), reason="SO_REUSEPORT spreads "
                                "connections on Linux only")

ARGS = ["--workers", "2"]


def listeners(port: int) -> int:
    """Listening TCP sockets on ``port``, from /proc/net/tcp{,6} (one per worker, or shared)."""
    count = 0
    for name in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def pid_of(port: int) -> int:
    """The pid answering ``/pid/`` on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/pid/")
        return int(conn.getresponse().read())
    finally:
        conn.close()


def test_each_worker_has_its_socket_and_the_kernel_spreads_connections(ocsi_process, exts_path):
    proc = ocsi_process(_config(exts_path, "x"), args=ARGS)
    workers = _answering(proc)
    assert len(workers) == 2
    assert listeners(proc.port) == 2  # the master's copies are the same two sockets
    served = Counter(pid_of(proc.port) for _ in range(200))
    assert set(served) == workers
    # a hash of each connection's ports picks the socket: both well above a few percent
    assert min(served.values()) >= 40, served


def test_a_killed_worker_leaves_its_queued_connections_to_its_replacement(ocsi_process, exts_path):
    proc = ocsi_process(_config(exts_path, "x"), args=ARGS)
    before = _answering(proc)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGSTOP)  # it accepts nothing more: its socket's queue fills
    conns = []
    try:
        for _ in range(40):
            conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=60)
            conn.request("GET", "/pid/")
            conns.append(conn)
        os.kill(victim, signal.SIGKILL)
        answered = [int(conn.getresponse().read()) for conn in conns]
    finally:
        for conn in conns:
            conn.close()

    def replaced() -> set[int] | None:
        now = _workers(proc)
        return now if len(now) == 2 and victim not in now else None

    after = _wait_for(replaced)
    (replacement,) = after - before
    # every connection answered: those queued on the dead worker's socket by its replacement
    assert len(answered) == 40 and victim not in answered
    assert replacement in answered, Counter(answered)
    assert listeners(proc.port) == 2
    assert _answering(proc) == after


def test_a_second_server_on_the_port_is_refused(ocsi_process, exts_path, tmp_path):
    """SO_REUSEPORT would let a second group of the same user join the port silently."""
    proc = ocsi_process(_config(exts_path, "x"), args=ARGS)
    assert len(_answering(proc)) == 2
    conf = tmp_path / "second.conf"
    conf.write_text(f"<ocsigen><server><port>127.0.0.1:{proc.port}</port></server></ocsigen>")
    done = subprocess.run([sys.executable, "-m", "ocsi", "-c", str(conf), *ARGS],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    assert "cannot listen on" in done.stderr and "second.conf:1" in done.stderr
    assert listeners(proc.port) == 2


def test_reuseport_false_keeps_one_shared_socket(ocsi_process, exts_path):
    proc = ocsi_process("<reuseport>false</reuseport>" + _config(exts_path, "x"), args=ARGS)
    assert len(_answering(proc)) == 2
    assert listeners(proc.port) == 1


def test_reload_reaches_every_worker_on_its_socket(ocsi_process, exts_path):
    proc = ocsi_process(_config(exts_path, "old"), args=ARGS)
    assert len(_answering(proc)) == 2
    Path(proc.config_path).write_text(Path(proc.config_path).read_text().replace('"old"', '"new"'))
    proc.command("reload")
    _wait_for(lambda: proc.log("warnings").count("Config file reloaded") == 2)
    bodies = Counter()
    pids = set()
    for _ in range(60):
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30)
        try:
            conn.request("GET", "/")
            bodies[conn.getresponse().read()] += 1
            conn.request("GET", "/pid/")
            pids.add(int(conn.getresponse().read()))
        finally:
            conn.close()
    assert bodies == {b"new": 60}
    assert len(pids) == 2  # both sockets were reached, and both workers said "new"


activate = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(activate is None, reason="systemd-socket-activate is not installed")
def test_socket_activation_with_workers_shares_the_passed_socket(tmp_path, exts_path):
    port = free_port()
    conf = tmp_path / "ocsi.conf"
    conf.write_text(f"<ocsigen><server><port>127.0.0.1:{port}</port>"
                    f"<commandpipe>{tmp_path}/cmd</commandpipe>{_config(exts_path, 'x')}"
                    "</server></ocsigen>")
    proc = subprocess.Popen([activate, "-l", f"127.0.0.1:{port}", sys.executable, "-m", "ocsi",
                             "-c", str(conf), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                pids.add(pid_of(port))
            except OSError:
                time.sleep(0.1)
        assert len(pids) == 2  # both workers accept on the one socket systemd bound
        assert listeners(port) == 1
        with open(tmp_path / "cmd", "w") as pipe:
            pipe.write("shutdown\n")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert b"Fatal" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_upgrade_hands_every_worker_socket_over(ocsi_process, exts_path, tmp_path):
    pidfile = tmp_path / "ocsi.pid"
    proc = ocsi_process(_config(exts_path, "x"), args=["-p", str(pidfile), *ARGS])
    old = _answering(proc)
    assert len(old) == 2 and listeners(proc.port) == 2
    proc.command("upgrade")
    assert proc.wait(60) == 0  # the old master drained and left
    new_master = int(pidfile.read_text())
    try:
        deadline = time.monotonic() + 60
        seen: set[int] = set()
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.add(pid_of(proc.port))
        assert len(seen) == 2 and not seen & old  # the new workers, each on a socket
        assert listeners(proc.port) == 2  # the same two sockets: none bound again, none lost
    finally:
        os.kill(new_master, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(new_master, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
