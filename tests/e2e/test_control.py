"""``ocsi reload``, ``ocsi shutdown``, ``ocsi reopen-logs``, ``ocsi command``: the real commands
against a real server process, and the command pipe's life around them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

STATIC = '<extension findlib-package="ocsigenserver.ext.staticmod"/>'


def ocsi(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocsi", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def site(ocsi_process, tmp_path):  # type: ignore[no-untyped-def]
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("one")
    return ocsi_process(STATIC + f'<host><static dir="{www}"/></host>')


def test_reload_reports_success_and_is_applied(site):
    Path(site.config_path).write_text(Path(site.config_path).read_text().replace(
        "<host>", '<host hostfilter="nothing.test"/><host>'))
    r = ocsi("reload", "-c", site.config_path)
    assert r.returncode == 0, r.stderr
    assert "ocsi reload: done" in r.stderr
    assert "Config file reloaded" in site.log("warnings")
    assert "[NOTICE] Config file reloaded" in site.log("warnings")  # not a warning


def test_a_broken_configuration_is_reported_with_its_location(site):
    path = Path(site.config_path)
    path.write_text(path.read_text().replace("<static ", "<statik "))
    r = ocsi("reload", "-c", site.config_path)
    assert r.returncode == 1
    assert f"{path}:" in r.stderr and "unknown element <statik>" in r.stderr, r.stderr
    assert "hint: known here" in r.stderr  # the hint on a line of its own
    assert r.stderr.rstrip().endswith("ocsi reload: failed")
    assert site.get("/").body == b"one"  # still serving the previous configuration


def test_command_and_reopen_logs(site):
    r = ocsi("reopen-logs", "-c", site.config_path)
    assert (r.returncode, r.stderr.strip()) == (0, "ocsi reopen-logs: done")
    r = ocsi("command", "-c", site.config_path, "clearcache")
    assert r.returncode == 0, r.stderr
    r = ocsi("command", "-c", site.config_path, "no-such-command")
    assert r.returncode == 1 and "warning: Unknown command: no-such-command" in r.stderr


def test_shutdown_waits_until_stopped_and_removes_the_pipe(site):
    assert os.path.exists(site.pipe)
    r = ocsi("shutdown", "-c", site.config_path)
    assert r.returncode == 0, r.stderr
    assert "ocsi shutdown: stopped" in r.stderr
    assert site.wait(15) == 0
    assert not os.path.exists(site.pipe)  # nobody can hang writing to a dead server's pipe
    r = ocsi("reload", "-c", site.config_path)
    assert r.returncode == 3 and "is the server running?" in r.stderr


def test_a_stale_pipe_is_reported_not_hung_on_and_taken_over(ocsi_process, tmp_path):
    # a FIFO left by a server killed with SIGKILL
    proc = ocsi_process(STATIC + f'<host><static dir="{tmp_path}"/></host>')
    proc.proc.kill()
    proc.wait(10)
    assert os.path.exists(proc.pipe)
    started = time.monotonic()
    r = ocsi("reload", "-c", proc.config_path, timeout=20)
    assert r.returncode == 3 and "no server is reading it" in r.stderr
    assert time.monotonic() - started < 15
    # the next server takes it over and answers on it
    again = subprocess.Popen([sys.executable, "-m", "ocsi", "-c", proc.config_path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = ocsi("reload", "-c", proc.config_path, "--timeout", "5", timeout=20)
            if r.returncode == 0:
                break
            time.sleep(0.2)
        assert r.returncode == 0, r.stderr
        assert ocsi("shutdown", "-c", proc.config_path).returncode == 0
        assert again.wait(15) == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.wait(5)


def test_workers_answer_too(ocsi_process, tmp_path):
    proc = ocsi_process(STATIC + f'<host><static dir="{tmp_path}"/></host>', args=["--workers", "2"])
    r = ocsi("reload", "-c", proc.config_path)
    assert r.returncode == 0, r.stderr
    path = Path(proc.config_path)
    path.write_text(path.read_text().replace("<static ", "<statik "))
    r = ocsi("reload", "-c", proc.config_path)
    assert r.returncode == 1 and "unknown element <statik>" in r.stderr
    r = ocsi("shutdown", "-c", proc.config_path)
    assert r.returncode == 0 and "stopped" in r.stderr
    assert proc.wait(15) == 0
    assert not os.path.exists(proc.pipe)


def test_no_pipe_and_no_configuration_are_explained(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("<ocsigen><server><port>8080</port></server></ocsigen>")
    r = ocsi("reload", "-c", str(conf))
    assert r.returncode == 1 and "has no <commandpipe>" in r.stderr and "HUP" in r.stderr
    r = ocsi("reload", "-c", str(tmp_path / "missing.conf"))
    assert r.returncode == 1 and "not found" in r.stderr


def test_a_server_that_never_answers_times_out(tmp_path):
    pipe = tmp_path / "cmd"
    os.mkfifo(pipe)
    conf = tmp_path / "a.conf"
    conf.write_text(f"<ocsigen><server><commandpipe>{pipe}</commandpipe></server></ocsigen>")
    reader = os.open(pipe, os.O_RDWR | os.O_NONBLOCK)  # an Ocsigen Server: reads, never replies
    try:
        r = ocsi("reload", "-c", str(conf), "--timeout", "0.5")
        assert r.returncode == 4 and "no answer within 0.5 s" in r.stderr
        assert os.read(reader, 4096).decode().endswith(" reload\n")
    finally:
        os.close(reader)
