"""systemd: readiness notifications to a real ``NOTIFY_SOCKET`` and sockets passed by Debian's
``systemd-socket-activate``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ocsi.testing import free_port

STATIC = '<extension findlib-package="ocsigenserver.ext.staticmod"/>'


class NotifySocket:
    """The service manager's end: a datagram socket collecting what ocsi sends."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str | None = None, timeout: float = 20) -> dict[str, str]:
        """The first message (from now on, or among those not yet taken) carrying ``key``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, m in enumerate(self.messages):
                if key in m and (value is None or m[key] == value):
                    del self.messages[: i + 1]
                    return m
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))
        raise AssertionError(f"no {key} within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path):  # type: ignore[no-untyped-def]
    n = NotifySocket(tmp_path / "notify")
    yield n
    n.close()


def ocsi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocsi", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("workers", [1, 2])
def test_ready_reloading_watchdog_stopping(ocsi_process, tmp_path, notify, workers):
    proc = ocsi_process(STATIC + f'<host><static dir="{tmp_path}"/></host>',
                        args=["--workers", str(workers)],
                        env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    ready = notify.wait_for("READY", "1")
    assert ready["MAINPID"] == str(proc.proc.pid) and ready["STATUS"]
    notify.wait_for("WATCHDOG", "1")  # every 0.2 s
    notify.wait_for("WATCHDOG", "1")
    assert ocsi("reload", "-c", proc.config_path).returncode == 0
    reloading = notify.wait_for("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notify.wait_for("READY", "1")
    proc.proc.terminate()
    notify.wait_for("STOPPING", "1")
    assert proc.wait(15) == 0


def test_nothing_is_sent_to_children(ocsi_process, tmp_path, notify):
    """Workers and applications do not inherit NOTIFY_SOCKET: only the main pid notifies."""
    proc = ocsi_process(STATIC + f'<host><static dir="{tmp_path}"/></host>',
                        args=["--workers", "2"], env={"NOTIFY_SOCKET": notify.path})
    notify.wait_for("READY", "1")
    proc.stop()
    assert all(m.get("MAINPID", str(proc.proc.pid)) == str(proc.proc.pid) for m in notify.messages)


activate = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(activate is None, reason="systemd-socket-activate is not installed")
def test_socket_activation(tmp_path):
    port, spare = free_port(), free_port()
    (tmp_path / "index.html").write_text("activated")
    conf = tmp_path / "ocsi.conf"
    conf.write_text(f"<ocsigen><server><port>127.0.0.1:{port}</port>"
                    f"<commandpipe>{tmp_path}/cmd</commandpipe>{STATIC}"
                    f'<host><static dir="{tmp_path}"/></host></server></ocsigen>')
    # systemd-socket-activate binds both, then runs ocsi with them once a client connects;
    # ocsi binding 127.0.0.1:PORT itself would fail (address in use)
    proc = subprocess.Popen([activate, "-l", f"127.0.0.1:{port}", "-l", f"127.0.0.1:{spare}",
                             sys.executable, "-m", "ocsi", "-c", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        body = b""
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    body = b"".join(iter(lambda: s.recv(65536), b""))
                break
            except OSError:
                time.sleep(0.1)
        assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"activated"), body
        assert ocsi("shutdown", "-c", str(conf)).returncode == 0
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"127.0.0.1:{spare} matches no <port>" in err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
