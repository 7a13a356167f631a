"""Worker processes (``--workers 2``): a master that forks servers sharing its listening socket."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .conftest import BASE

ARGS = ["--workers", "2"]
ACCESS_LINE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d: ocsigen:access: connection for 127\.0\.0\.1 "
                         r"from 127\.0\.0\.1 \(\): /load/\d+ 200 \d+$")


def _config(exts_path: str, text: str) -> str:
    return BASE.format(exts=exts_path) + f'<host><site path="pid"><pid/></site><say text="{text}"/></host>'


def _start(ocsi_process, exts_path, text="old"):
    return ocsi_process(_config(exts_path, text), args=ARGS)


def _workers(proc) -> set[int]:
    """The master's children, from /proc."""
    pids: set[int] = set()
    for task in Path(f"/proc/{proc.proc.pid}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met within %g s" % timeout)


def _answering(proc, want: int = 2, timeout: float = 60.0) -> set[int]:
    """PIDs answering /pid, each request on a new connection, until ``want`` distinct ones.

    Bounded by time rather than by a count of rounds: on a loaded machine a worker still
    starting leaves every connection of the first rounds to the other one."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(4) as pool:
        while time.monotonic() < deadline:
            seen |= {int(r.body) for r in pool.map(lambda _: proc.get("/pid/"), range(20))}
            if len(seen) >= want:
                break
            time.sleep(0.1)
    return seen


def test_requests_are_served_by_several_workers(ocsi_process, exts_path):
    proc = _start(ocsi_process, exts_path)
    pids = _answering(proc)
    assert len(pids) == 2
    assert proc.proc.pid not in pids
    assert pids == _workers(proc)
    assert proc.get("/").body == b"old"


def test_reload_through_the_pipe_reaches_every_worker(ocsi_process, exts_path):
    proc = _start(ocsi_process, exts_path)
    assert len(_answering(proc)) == 2  # both workers are up
    Path(proc.config_path).write_text(Path(proc.config_path).read_text().replace('"old"', '"new"'))
    proc.command("reload")
    _wait_for(lambda: proc.log("warnings").count("Config file reloaded") == 2)
    assert {proc.get("/").body for _ in range(40)} == {b"new"}


def test_broken_reload_keeps_serving(ocsi_process, exts_path):
    proc = _start(ocsi_process, exts_path)
    assert len(_answering(proc)) == 2
    Path(proc.config_path).write_text(Path(proc.config_path).read_text().replace("<pid/>", "<nosuch/>"))
    proc.command("reload")
    errors = _wait_for(lambda: "Reload failed" in proc.log("errors") and proc.log("errors"))
    assert "unknown element <nosuch>" in errors and "ocsi.conf:" in errors
    assert "Reloading config file" not in proc.log("warnings")  # no worker was asked to
    assert {proc.get("/").body for _ in range(20)} == {b"old"}
    assert len(_answering(proc)) == 2


def test_pipe_shutdown_exits_zero_and_leaves_no_worker(ocsi_process, exts_path):
    proc = _start(ocsi_process, exts_path)
    pids = _answering(proc)
    assert len(pids) == 2
    proc.command("shutdown 2")
    assert proc.wait(15) == 0
    assert not any(_alive(pid) for pid in pids)
    warnings = proc.log("warnings")
    assert warnings.count("Shutting down (at most 2 s)") == 2


def test_killed_worker_is_replaced(ocsi_process, exts_path):
    proc = _start(ocsi_process, exts_path)
    before = _answering(proc)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> set[int] | None:
        now = _workers(proc)
        return now if len(now) == 2 and victim not in now else None

    after = _wait_for(replaced)
    assert len(after & before) == 1
    assert _answering(proc) == after
    errors = proc.log("errors")
    assert f"(pid {victim}) was killed by SIGKILL; restarting it" in errors


def test_access_lines_do_not_interleave(ocsi_process, exts_path):
    proc = _start(ocsi_process, exts_path)
    assert len(_answering(proc)) == 2
    total, per_connection = 2000, 50

    def client(base: int) -> int:
        served = 0
        for first in range(base, base + total // 4, per_connection):
            conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
            try:
                for n in range(first, first + per_connection):
                    conn.request("GET", f"/load/{n}")
                    resp = conn.getresponse()
                    resp.read()
                    served += resp.status == 200
            finally:
                conn.close()
        return served

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(client, range(0, total, total // 4))) == total
    # access lines are flushed once a second per worker: wait for the /load/ ones themselves
    # (counting all lines would also count /pid/ lines still buffered when start was read)
    text = _wait_for(lambda: (t := proc.log()).count("/load/") >= total and t)
    lines = [line for line in text.splitlines() if "/load/" in line]
    assert len(lines) == total
    bad = [line for line in lines if not ACCESS_LINE.match(line)]
    assert not bad, bad[:3]
    assert sorted(int(line.split("/load/")[1].split()[0]) for line in lines) == list(range(total))


def test_workers_directive_and_option(write_conf, exts_path):
    from ocsi.cli import main
    from ocsi._config.errors import ConfigError
    from ocsi._extensions.loader import new_plugin_manager
    from ocsi.runtime import build_configuration
    from ocsi._config.directives import configured_workers

    def settings(value: str):
        path = write_conf(f"<ocsigen><server><port>0</port><workers>{value}</workers></server></ocsigen>")
        return path, build_configuration(new_plugin_manager(), path).settings

    path, s = settings("3")
    assert s.workers == 3 and configured_workers(path) == 3
    assert settings("auto")[1].workers == (os.cpu_count() or 1)
    path = write_conf("<ocsigen><server><port>0</port><workers>0</workers></server></ocsigen>")
    assert configured_workers(path) == 1  # the normal start reports it, located
    try:
        build_configuration(new_plugin_manager(), path)
    except ConfigError as exc:
        assert "ocsi.conf:1" in str(exc) and "number of workers" in str(exc)
    else:
        raise AssertionError("<workers>0</workers> accepted")
    assert main(["-c", path, "--workers", "0"]) == 2


def test_configuration_error_exits_from_the_master(write_conf):
    path = write_conf("<ocsigen><server><port>0</port><nosuch/></server></ocsigen>")
    done = subprocess.run([sys.executable, "-m", "ocsi", "-c", path, "--workers", "2"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 50
    assert "ocsi.conf:1" in done.stderr and "unknown element <nosuch>" in done.stderr


def test_reload_file_once_then_the_own_file_again(ocsi_process, exts_path, tmp_path):
    proc = _start(ocsi_process, exts_path)
    assert len(_answering(proc)) == 2
    other = tmp_path / "other.conf"
    other.write_text(Path(proc.config_path).read_text().replace('"old"', '"other"'))
    proc.command(f"reload {other}")
    _wait_for(lambda: proc.log("warnings").count("Config file reloaded") == 2)
    assert {proc.get("/").body for _ in range(20)} == {b"other"}
    proc.command("reload")
    _wait_for(lambda: proc.log("warnings").count("Config file reloaded") == 4)
    assert {proc.get("/").body for _ in range(20)} == {b"old"}
