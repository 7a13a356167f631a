"""Reloads while clients keep coming: no request fails, and a keep-alive connection that spans a
reload is answered by the new configuration on its next request (never reset). Bounded: a few
clients, a few hundred requests, a handful of reloads."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

from .conftest import BASE

CLIENTS = 4
REQUESTS = 80  # per client
RELOADS = 6


def _config(exts: str, text: str) -> str:
    return BASE.format(exts=exts) + f'<host><say text="{text}"/></host>'


def _hammer(port: int, results: list, stop: threading.Event) -> None:
    """One keep-alive connection, REQUESTS requests (a new connection only if the server
    closed the old one, which it must not do here)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    reconnects = 0
    try:
        for _ in range(REQUESTS):
            if stop.is_set():
                break
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                results.append((r.status, r.read(), r.getheader("connection")))
            except (OSError, http.client.HTTPException) as exc:
                results.append(("error", repr(exc), None))
                conn.close()
                reconnects += 1
    finally:
        conn.close()
        results.append(("reconnects", reconnects, None))


def _run_clients(port: int, reload_once) -> list:
    results: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=_hammer, args=(port, results, stop)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        for i in range(RELOADS):
            reload_once(i)
    finally:
        for t in threads:
            t.join(60)
        stop.set()
    return results


def _check(results: list, texts: set[bytes]) -> None:
    errors = [r for r in results if r[0] == "error"]
    assert not errors, errors[:5]
    assert [r[1] for r in results if r[0] == "reconnects"] == [0] * CLIENTS
    answers = [r for r in results if r[0] != "reconnects"]
    assert len(answers) == CLIENTS * REQUESTS
    assert {r[0] for r in answers} == {200}
    assert {r[1] for r in answers} <= texts
    assert all(r[2] != "close" for r in answers)  # nothing asked a client to go away


def test_reloads_under_load_lose_nothing(serve, exts_path):
    srv = serve('<host><say text="v0"/></host>')

    def reload_once(i: int) -> None:
        srv.reload(_config(exts_path, f"v{i + 1}"))

    results = _run_clients(srv.port, reload_once)
    _check(results, {f"v{i}".encode() for i in range(RELOADS + 1)})
    assert srv.server.reloads == RELOADS
    assert srv.get("/").body == f"v{RELOADS}".encode()


def test_a_keepalive_connection_spanning_a_reload_gets_the_new_configuration(serve, exts_path):
    srv = serve('<host><say text="before"/></host>')
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"before"
    local = conn.sock.getsockname()
    srv.reload(_config(exts_path, "after"))
    conn.request("GET", "/")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"after")
    assert conn.sock.getsockname() == local  # the same connection, not a new one
    conn.close()


# -- the same with worker processes ---------------------------------------------------------------
def _worker_reload(proc, exts_path: str, text: str, done: int) -> None:
    Path(proc.config_path).write_text(_config(exts_path, text).join(
        ("<ocsigen><server>\n<port>127.0.0.1:%d</port>\n<logdir>%s</logdir>\n"
         "<commandpipe>%s</commandpipe>\n" % (proc.port, proc.logdir, proc.pipe),
         "\n</server></ocsigen>\n")))
    proc.command("reload")
    deadline = time.monotonic() + 20
    while proc.log("warnings").count("Config file reloaded") < done and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.log("warnings").count("Config file reloaded") >= done


def test_worker_reloads_under_load_lose_nothing(ocsi_process, exts_path):
    proc = ocsi_process(_config(exts_path, "v0"), args=["--workers", "2"])

    def reload_once(i: int) -> None:
        _worker_reload(proc, exts_path, f"v{i + 1}", 2 * (i + 1))  # each worker says it once

    results = _run_clients(proc.port, reload_once)
    _check(results, {f"v{i}".encode() for i in range(RELOADS + 1)})
    answers = {proc.get("/").body for _ in range(10)}
    assert answers == {f"v{RELOADS}".encode()}, proc.log("warnings")


def test_worker_keepalive_connection_spanning_a_reload(ocsi_process, exts_path):
    proc = ocsi_process(_config(exts_path, "before"), args=["--workers", "2"])
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"before"
    local = conn.sock.getsockname()
    _worker_reload(proc, exts_path, "after", 2)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"after")
    assert conn.sock.getsockname() == local
    conn.close()
