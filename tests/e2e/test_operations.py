"""Command pipe, reload, shutdown, logs and signals."""

import os
import socket
import time

import pytest

from .conftest import BASE


def test_pipe_created_fifo(serve):
    srv = serve("<host/>")
    import stat
    assert stat.S_ISFIFO(os.stat(srv.pipe).st_mode)
    assert oct(os.stat(srv.pipe).st_mode & 0o777) == "0o660"


def test_reload_adds_host(serve, exts_path):
    srv = serve('<host hostfilter="a"><say text="a"/></host>')
    assert srv.get("/", headers={"Host": "b"}).status == 404
    srv.reload(BASE.format(exts=exts_path) +
               '<host hostfilter="a"><say text="a"/></host><host hostfilter="b"><say text="b"/></host>')
    assert srv.get("/", headers={"Host": "b"}).body == b"b"
    assert "Config file reloaded" in srv.log("warnings")


def test_failed_reload_keeps_running_config(serve):
    srv = serve('<host><say text="old"/></host>')
    srv.reload('<host><nosuch/></host>')
    assert srv.get("/").body == b"old"
    errors = srv.log("errors")
    assert "Reload failed" in errors and "unknown element <nosuch>" in errors and "ocsi.conf:" in errors


def test_reload_other_file(serve, tmp_path, exts_path):
    srv = serve('<host><say text="old"/></host>')
    other = tmp_path / "other.conf"
    other.write_text(f"<ocsigen><server>{BASE.format(exts=exts_path)}<host><say text='other'/></host>"
                     "</server></ocsigen>")
    srv.command(f"reload {other}")
    assert srv.get("/").body == b"other"
    # FILE was loaded once: a plain reload reads the server's own file again, as Ocsigen does
    srv.command("reload")
    assert srv.get("/").body == b"old"


def test_inflight_request_finishes_on_old_config(serve, exts_path):
    srv = serve('<host><echo/></host>')
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    # A request whose body is still arriving while the reload happens.
    s.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
    time.sleep(0.2)
    srv.reload(BASE.format(exts=exts_path) + '<host><say text="new"/></host>')
    s.sendall(b"cd")
    data = s.recv(65536)
    s.close()
    assert b"POST /x" in data and data.endswith(b"abcd")
    assert srv.get("/").body == b"new"


def test_shutdown_drains_inflight(serve):
    srv = serve('<host><echo/></host>')
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
    time.sleep(0.2)
    srv.write_pipe("shutdown 5")
    time.sleep(0.3)
    # The listener is closed: new connections are refused.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
    s.sendall(b"cd")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    assert b"200" in data and data.endswith(b"abcd") and b"connection: close" in data.lower()
    srv.thread.join(10)
    assert not srv.thread.is_alive()


def test_shutdown_timeout_aborts(serve):
    srv = serve('<host><echo/></host>')
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
    time.sleep(0.2)
    start = time.monotonic()
    srv.write_pipe("shutdown 0.5")
    srv.thread.join(10)
    assert not srv.thread.is_alive() and time.monotonic() - start < 5
    s.close()


def test_reopen_logs(serve):
    srv = serve('<host><say text="x"/></host>')
    srv.get("/one")
    srv.wait_log("access", "/one")
    os.rename(os.path.join(srv.logdir, "access.log"), os.path.join(srv.logdir, "access.log.1"))
    srv.command("reopen_logs")
    srv.get("/two")
    assert "/two" in srv.wait_log("access", "/two") and "/one" not in srv.log("access")
    assert "Log files reopened" in srv.log("warnings")


def test_gc_clearcache_unknown_and_extension_commands(serve):
    import ocsi_ext_testbase
    srv = serve('<host><say text="x"/></host>')
    srv.command("gc")
    srv.command("clearcache")
    srv.command("frobnicate")
    srv.command("testbase:ping a b")
    srv.command("ocsi-ext-testbase:ping c")
    srv.command("nosuchext:ping")
    warnings = srv.log("warnings")
    assert "Heap compaction requested by user" in warnings
    assert "Unknown command: frobnicate" in warnings
    assert "Unknown command: nosuchext:ping" in warnings
    assert "testbase:ping: pong" in warnings
    assert "base:ping a b" in ocsi_ext_testbase.EVENTS and "base:ping c" in ocsi_ext_testbase.EVENTS
    assert srv.get("/").status == 200  # still serving


def test_logs_level_command(serve):
    import logging
    srv = serve('<host/>')
    srv.command("logs:ocsigen:ext:foo debug")
    assert logging.getLogger("ocsi.ext.foo").level == logging.DEBUG


def _wait_body(srv, path, expected, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.get(path).body == expected:
            return True
        time.sleep(0.05)
    return False


def test_watch_reloads_on_change(serve, exts_path, tmp_path):
    d = tmp_path / "sites"
    d.mkdir()
    srv = serve(f'<extconf dir="{d}"/><host><say text="main"/></host>', watch=True)
    assert srv.get("/").body == b"main"
    # a new extconf file with a host placed before the main one
    (d / "a.conf").write_text('<ocsigen><server><host hostfilter="*"><say text="extconf"/></host>'
                              '</server></ocsigen>')
    assert _wait_body(srv, "/", b"extconf")
    # editing the main file
    from pathlib import Path
    p = Path(srv.config_path)
    p.write_text(p.read_text().replace(f'<extconf dir="{d}"/>', "").replace('"main"', '"edited"'))
    assert _wait_body(srv, "/", b"edited")
    # a broken edit is a failed reload, logged where it is, and the running configuration stays
    p.write_text(p.read_text().replace("<host>", "<host><broken/>"))
    errors = srv.wait_log("errors", "Reload failed", timeout=10)
    assert "Reload failed, configuration unchanged" in errors and "unknown element <broken>" in errors
    assert srv.get("/").body == b"edited"


def test_syslog(ocsi_server, exts_path, tmp_path, monkeypatch):
    """<syslog> sends messages and access lines to the syslog socket, with the facility."""
    path = str(tmp_path / "log.sock")
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(path)
    sink.settimeout(5)
    monkeypatch.setenv("OCSI_SYSLOG_SOCKET", path)
    try:
        (tmp_path / "logs").mkdir()
        srv = ocsi_server(f"""<ocsigen><server><port>127.0.0.1:{{port}}</port><syslog>local3</syslog>
          <logdir>{tmp_path}/logs</logdir>
          <commandpipe>{tmp_path}/s.cmd</commandpipe>{BASE.format(exts=exts_path)}
          <host><say text='x'/></host></server></ocsigen>""", full=True)
        srv.get("/hello")
        srv.command("gc")
        seen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
                any(b"/hello" in m for m in seen) and any(b"Heap compaction" in m for m in seen)):
            try:
                seen.append(sink.recv(65536))
            except socket.timeout:
                break
        access = next(m for m in seen if b"/hello" in m)
        assert access.startswith(b"<%d>" % (19 * 8 + 6))  # local3, info
        assert b"ocsi: ocsigen:access: connection for" in access
        assert any(m.startswith(b"<%d>" % (19 * 8 + 4)) and b"Heap compaction" in m for m in seen)
        srv.stop()
        assert os.listdir(tmp_path / "logs") == []  # syslog replaces the log files, as in Ocsigen
    finally:
        sink.close()


def test_shutdown_with_a_bad_duration_is_refused(serve):
    srv = serve('<host><say text="x"/></host>')
    srv.command("shutdown soon")
    assert srv.get("/").body == b"x"
    assert "not a number of seconds or notimeout" in srv.log("errors")


def test_a_full_disk_loses_access_lines_not_the_server(serve):
    """access.log on a device that is always full (/dev/full): requests are still answered, the
    failure is logged once (not once per line), and lines are dropped rather than kept."""
    srv = serve('<host><say text="x"/></host>')
    access = os.path.join(srv.logdir, "access.log")
    os.unlink(access)
    os.symlink("/dev/full", access)
    mode = os.stat("/dev/full").st_mode
    srv.command("reopen_logs")
    for i in range(30):
        assert srv.get(f"/n{i}").body == b"x"
    srv.command("gc")  # a round trip through the loop, after the flushes of the lines above
    srv.server.logs.access.flush()
    errors = srv.wait_log("errors", "cannot write")
    assert errors.count("cannot write") == 1
    assert f"cannot write {access} (No space left on device)" in errors
    assert srv.server.logs.access.lost >= 30 and not srv.server.logs.access._lines
    assert os.stat("/dev/full").st_mode == mode  # reopening did not chmod the link's target
    assert srv.get("/after").status == 200


def test_syslog_that_cannot_be_reached_falls_back_to_the_terminal(ocsi_process, exts_path, tmp_path):
    proc = ocsi_process(f"<syslog>daemon</syslog>{BASE.format(exts=exts_path)}"
                        "<host><say text='x'/></host>",
                        env={"OCSI_SYSLOG_SOCKET": str(tmp_path / "no-such.sock")})
    assert proc.get("/via-terminal").body == b"x"
    assert proc.stop() == 0
    assert f"cannot reach syslog at {tmp_path}/no-such.sock" in proc.stderr_path.read_text()
    assert "/via-terminal 200" in proc.stdout_path.read_text()


LIBRARY = '''
import ocsi
from ocsi import DO_NOTHING, Found, Response, Serve

TEXT = "{text}"


class Page(ocsi.Step):
    async def handle(self, request, state):
        if isinstance(state, Found):
            return DO_NOTHING
        return Serve(Response(200, [("content-type", "text/plain")], TEXT.encode()))


@ocsi.hookimpl
def ocsi_elements():
    return {{"libpage": lambda el, ctx: Page()}}
'''


def test_watch_reloads_library_code_once_per_burst_of_writes(serve, tmp_path, monkeypatch):
    import sys

    # bytecode cached as a user's Python would, and every version of the file with the same
    # size and the same mtime second: what a quick edit looks like to that cache
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    stamp = int(time.time())
    lib = tmp_path / "lib"
    lib.mkdir()
    source = lib / "watched_site.py"
    source.write_text(LIBRARY.format(text="v0"))
    os.utime(source, (stamp, stamp))
    srv = serve(f'<findlib path="{lib}"/><library module="watched_site"/><host><libpage/></host>',
                watch=True)
    assert srv.get("/").body == b"v0"
    before = srv.server.reloads
    assert list((lib / "__pycache__").iterdir())
    for i in range(1, 10):  # an editor's burst: nine writes
        source.write_text(LIBRARY.format(text=f"v{i}"))
        os.utime(source, (stamp, stamp))
    assert _wait_body(srv, "/", b"v9")
    # the burst was one reload (the debounce is 0.3 s; a second more shows none follows)
    time.sleep(1.0)
    assert srv.server.reloads == before + 1


def test_json_logs(ocsi_process, tmp_path):
    import json
    import time as _time

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "a.txt").write_text("hello")
    proc = ocsi_process('<accesslogformat>json</accesslogformat><logformat>json</logformat>'
                        '<extension findlib-package="ocsigenserver.ext.staticmod"/>'
                        f'<host><static dir="{tmp_path}/www"/></host>')
    proc.get("/a.txt?x=1", {"User-Agent": 'evil"\\ agent', "Referer": "http://r.test/",
                            "X-Forwarded-For": "10.0.0.1"})
    proc.command("no-such-command")
    deadline = _time.monotonic() + 10
    while (not proc.log("access") or "no-such-command" not in proc.log("warnings")) \
            and _time.monotonic() < deadline:
        _time.sleep(0.05)
    proc.stop()
    line = json.loads(proc.log("access").splitlines()[0])
    assert line["method"] == "GET" and line["target"] == "/a.txt?x=1" and line["status"] == 200
    assert line["user_agent"] == 'evil"\\ agent' and line["referer"] == "http://r.test/"
    assert line["forwarded_for"] == "10.0.0.1" and line["client"] == "127.0.0.1"
    assert line["protocol"] == "HTTP/1.1" and line["bytes_sent"] == 5 and line["tls"] is False
    assert line["tls_version"] is None
    assert line["time"].endswith("Z") and isinstance(line["duration_ms"], float)
    assert line["pid"] == proc.proc.pid and line["worker"] is None
    records = [json.loads(x) for x in proc.log("warnings").splitlines()]
    unknown = [r for r in records if "Unknown command" in r["message"]]
    assert unknown and unknown[0]["level"] == "warning" and unknown[0]["logger"] == "ocsi.main"
    assert any(r["level"] == "notice" and "Listening on" in r["message"] for r in records)


def test_json_access_lines_name_the_worker(ocsi_process, tmp_path):
    import json
    import time as _time

    (tmp_path / "a.txt").write_text("hello")
    proc = ocsi_process('<accesslogformat>json</accesslogformat>'
                        '<extension findlib-package="ocsigenserver.ext.staticmod"/>'
                        f'<host><static dir="{tmp_path}"/></host>', args=["--workers", "2"])
    for _ in range(20):
        assert proc.get("/a.txt").status == 200
    deadline = _time.monotonic() + 10
    while proc.log("access").count("\n") < 20 and _time.monotonic() < deadline:
        _time.sleep(0.05)
    lines = [json.loads(x) for x in proc.log("access").splitlines()]
    assert len(lines) >= 20 and {line["worker"] for line in lines} <= {0, 1}
    assert all(line["pid"] != proc.proc.pid for line in lines)  # written by the workers
