"""The ocsi command as a user runs it (subprocesses)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


from ocsi.testing import free_port


def ocsi(*args, cwd=None, timeout=30, env=None):
    return subprocess.run([sys.executable, "-m", "ocsi", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


def test_version_and_help():
    r = ocsi("--version")
    assert r.returncode == 0 and r.stdout.startswith("ocsi ")
    r = ocsi("--help")
    assert r.returncode == 0 and "-c FILE" in r.stdout and "serve" in r.stdout


def test_unknown_option_exit_2():
    r = ocsi("--bogus")
    assert r.returncode == 2 and "bogus" in r.stderr


def test_missing_default_config(tmp_path):
    r = ocsi(env={"OCSI_CONFIG": str(tmp_path / "none.conf")})
    assert r.returncode == 50 and "not found" in r.stderr and "-c FILE" in r.stderr


def test_check_ok_and_errors(tmp_path, exts_path):
    good = tmp_path / "good.conf"
    good.write_text(f"<ocsigen><server><findlib path='{exts_path}'/>"
                    "<extension findlib-package='ocsi-ext-testbase'/><host><say text='x'/></host></server></ocsigen>")
    r = ocsi("--check", "-c", str(good))
    assert r.returncode == 0 and "configuration OK" in r.stdout and "ocsi-ext-testbase" in r.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("<ocsigen><server>\n  <statc/>\n</server></ocsigen>")
    r = ocsi("--check", "-c", str(bad))
    assert r.returncode == 50 and f"{bad}:2:3: unknown element <statc>" in r.stderr
    xml = tmp_path / "xml.conf"
    xml.write_text("<ocsigen><server>")
    assert ocsi("--check", "-c", str(xml)).returncode == 51
    missing = tmp_path / "ext.conf"
    missing.write_text("<ocsigen><server><extension findlib-package='ocsi-ext-nope'/></server></ocsigen>")
    r = ocsi("--check", "-c", str(missing))
    assert r.returncode == 53 and "ocsi-ext-nope" in r.stderr


def test_check_reads_the_ssl_files(tmp_path):
    from cryptography.hazmat.primitives import serialization

    from ocsi.certificates import self_signed

    cert, key = self_signed()
    other_cert, _ = self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    (tmp_path / "other.pem").write_bytes(other_cert)
    protected = serialization.load_pem_private_key(key, None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"))
    (tmp_path / "pk.pem").write_bytes(protected)

    def check(cert_file: str, key_file: str) -> subprocess.CompletedProcess:
        conf = tmp_path / "tls.conf"
        conf.write_text('<ocsigen><server><port protocol="HTTPS">8443</port>\n'
                        f"<ssl><certificate>{tmp_path}/{cert_file}</certificate>"
                        f"<privatekey>{tmp_path}/{key_file}</privatekey></ssl>"
                        "<host/></server></ocsigen>")
        return ocsi("--check", "-c", str(conf))

    assert check("c.pem", "k.pem").returncode == 0
    missing = check("none.pem", "k.pem")
    assert missing.returncode == 50 and "tls.conf:2:" in missing.stderr
    assert "cannot read the SSL certificate" in missing.stderr
    mismatch = check("other.pem", "k.pem")
    assert mismatch.returncode == 50 and "do not match" in mismatch.stderr
    asked = check("c.pem", "pk.pem")  # the password is asked at start, not by --check
    assert asked.returncode == 0 and "protected by a password, asked at start" in asked.stdout


def test_bind_failure_exit_9(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        conf = tmp_path / "c.conf"
        conf.write_text(f"<ocsigen><server><port>127.0.0.1:{port}</port></server></ocsigen>")
        r = ocsi("-c", str(conf))
    assert r.returncode == 9 and "cannot listen" in r.stderr


def test_serve_argument_errors(tmp_path):
    assert ocsi("serve", str(tmp_path / "nope")).returncode == 2
    f = tmp_path / "f"
    f.write_text("x")
    r = ocsi("serve", str(f))
    assert r.returncode == 2 and "is not a directory" in r.stderr
    r = ocsi("-c", "x.conf", str(tmp_path))
    assert r.returncode == 2 and "cannot be combined" in r.stderr
    r = ocsi("--port", "1")
    assert r.returncode == 2 and "require a directory" in r.stderr


def test_pidfile_sighup_sigterm(ocsi_process, exts_path, tmp_path):
    xml = (f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
           "<host><say text='one'/></host>")
    pid = tmp_path / "ocsi.pid"
    proc = ocsi_process(xml, args=["-p", str(pid)])
    assert pid.read_text() == f"{proc.proc.pid}\n"
    assert proc.get("/").body == b"one"
    text = Path(proc.config_path).read_text().replace("'one'", "'two'")
    Path(proc.config_path).write_text(text)
    proc.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while proc.get("/").body != b"two" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.get("/").body == b"two"
    proc.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "Log files reopened" not in proc.log("warnings") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Log files reopened" in proc.log("warnings")
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_pipe_shutdown_exits_zero(ocsi_process, exts_path):
    proc = ocsi_process(f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
                        "<host><say text='x'/></host>")
    proc.command("shutdown")
    assert proc.wait(15) == 0
    assert "Command received: shutdown" in proc.log("warnings")


def test_silent_writes_nothing_on_terminal(ocsi_process, exts_path):
    proc = ocsi_process(f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
                        "<host><say text='x'/></host>", args=["-s"])
    proc.get("/")
    proc.command("gc")
    time.sleep(0.3)
    proc.stop()
    assert proc.stdout_path.read_text() == "" and proc.stderr_path.read_text() == ""
    assert "Heap compaction" in proc.log("warnings")


def test_verbose_reaches_extensions(ocsi_process, exts_path):
    proc = ocsi_process(f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
                        "<host><say text='x'/></host>", args=["-vv"])
    proc.stop()
    assert "extension ocsi-ext-testbase 1.0 loaded" in proc.stdout_path.read_text()


def test_extensions_command(tmp_path):
    r = ocsi("extensions")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = lines.index("ocsi-ext-staticmod 0.1.0")
    block = lines[at:at + 4]
    assert block[1].startswith("    ") and "static files" in block[1]  # its summary
    assert block[2:] == ["    elements: <static>", "    depends on: -"]
    # then each element with its attributes and what it does, and the <extension> options
    assert lines[at + 4].startswith("    <static dir regexp dest code root cache ")
    assert lines[at + 5].startswith("    <filecache ttl entries>  (in <extension>) ")


REPO = Path(__file__).resolve().parents[2]


def test_sample_configuration_checks():
    r = ocsi("--check", "-c", "conf.d/ocsi.conf", cwd=REPO)
    assert r.returncode == 0, r.stderr


def test_sample_configuration_serves(tmp_path):
    port = free_port()
    text = (REPO / "conf.d" / "ocsi.conf").read_text()
    text = text.replace("<port>8080</port>", f"<port>127.0.0.1:{port}</port>")
    text = text.replace("conf.d/ocsi.cmd", str(tmp_path / "ocsi.cmd"))
    conf = tmp_path / "ocsi.conf"
    conf.write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "-c", str(conf)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        import http.client
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/", headers={"Accept-Encoding": "gzip"})
                r = conn.getresponse()
                body = r.read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert r.status == 200 and r.getheader("Content-Encoding") == "gzip"
        import gzip
        assert b"ocsi is running" in gzip.decompress(body)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_serve_mode_subprocess(tmp_path):
    www = tmp_path / "www"
    (www / "sub").mkdir(parents=True)
    (www / "index.html").write_text("<html>hello</html>")
    (www / "a b.txt").write_text("spaced")
    port = free_port()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "serve", str(www), "--port", str(port),
                             "--bind", "127.0.0.1", "--listing"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        import http.client
        deadline = time.monotonic() + 20
        def get(path):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        while True:
            try:
                status, body = get("/index.html")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert (status, body) == (200, b"<html>hello</html>")
        assert get("/nope.html")[0] == 404
        assert get("/a%20b.txt") == (200, b"spaced")
        status, listing = get("/sub/")
        assert status == 200 and b"Directory listing" in listing
        pipe = Path(tempfile_dir()) / f"ocsi-{proc.pid}.cmd"
        assert pipe.exists()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert list(cwd.iterdir()) == []  # serve mode writes nothing in the current directory
    assert b"/index.html" in out  # access lines on the terminal
    assert not pipe.exists()


def tempfile_dir():
    import tempfile
    return tempfile.gettempdir()


def test_daemon_detaches(tmp_path, exts_path):
    port = free_port()
    conf = tmp_path / "d.conf"
    (tmp_path / "log").mkdir()
    conf.write_text(f"<ocsigen><server><port>127.0.0.1:{port}</port><logdir>{tmp_path}/log</logdir>"
                    f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
                    "<host><say text='daemon'/></host></server></ocsigen>")
    pidfile = tmp_path / "d.pid"
    r = ocsi("-d", "-c", str(conf), "-p", str(pidfile))
    assert r.returncode == 0 and r.stdout.startswith("Process ") and r.stdout.endswith(" detached\n")
    pid = int(pidfile.read_text())
    assert r.stdout == f"Process {pid} detached\n"
    try:
        import http.client
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                assert conn.getresponse().read() == b"daemon"
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def test_extensions_lists_builtins():
    r = ocsi("extensions")
    assert "ocsi-ext-staticmod" in r.stdout and "<static>" in r.stdout
    assert "ocsi-ext-deflatemod" in r.stdout and "<deflate>" in r.stdout


@pytest.fixture
def nobody_logdir():
    """A log directory owned by nobody, on a path nobody can traverse (pytest's is root's)."""
    import pwd
    import shutil
    import tempfile

    nobody = pwd.getpwnam("nobody")
    logdir = Path(tempfile.mkdtemp(prefix="ocsi-logs-"))
    os.chown(logdir, nobody.pw_uid, nobody.pw_gid)
    yield logdir
    shutil.rmtree(logdir, ignore_errors=True)


@pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root")
def test_user_group_drop_privileges(ocsi_process, exts_path, tmp_path, nobody_logdir):
    import pwd
    nobody = pwd.getpwnam("nobody")
    logdir = nobody_logdir
    proc = ocsi_process(f"<ocsigen><server><port>127.0.0.1:{{port}}</port><logdir>{logdir}</logdir>"
                        f"<commandpipe>{tmp_path}/p.cmd</commandpipe><user>nobody</user>"
                        f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
                        "<host><say text='x'/></host></server></ocsigen>", full=True)
    proc.logdir, proc.pipe = str(logdir), f"{tmp_path}/p.cmd"
    assert proc.get("/").body == b"x"
    status = Path(f"/proc/{proc.proc.pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4
    access = os.path.join(proc.logdir, "access.log")
    assert os.stat(access).st_uid == nobody.pw_uid
    assert os.stat(proc.pipe).st_uid == nobody.pw_uid  # the pipe was handed over too
    os.rename(access, access + ".1")  # as logrotate does
    proc.command("reopen_logs")
    # the server, no longer root, creates the new file itself in the directory it was given
    deadline = time.monotonic() + 10
    while not os.path.exists(access) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.get("/after-reopen").status == 200
    while "/after-reopen" not in Path(access).read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "/after-reopen" in Path(access).read_text()
    assert "/after-reopen" not in Path(access + ".1").read_text()
    assert os.stat(access).st_uid == nobody.pw_uid
    assert proc.stop() == 0


@pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root")
def test_reopen_logs_in_a_directory_the_user_cannot_write(ocsi_process, exts_path):
    """Said at start; on reopen_logs the server keeps writing to the rotated files."""
    proc = ocsi_process(f"<user>nobody</user><findlib path='{exts_path}'/>"
                        "<extension findlib-package='ocsi-ext-testbase'/><host><say text='x'/></host>")
    warnings = Path(proc.logdir, "warnings.log")
    deadline = time.monotonic() + 10  # said once privileges are dropped, after the port opened
    while "is not writable by uid" not in warnings.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "is not writable by uid" in warnings.read_text()
    access = os.path.join(proc.logdir, "access.log")
    os.rename(access, access + ".1")
    os.rename(warnings, str(warnings) + ".1")
    os.rename(os.path.join(proc.logdir, "errors.log"), os.path.join(proc.logdir, "errors.log.1"))
    proc.command("reopen_logs")
    errors = Path(proc.logdir, "errors.log.1")
    deadline = time.monotonic() + 10
    while "cannot reopen" not in errors.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f"cannot reopen {access} (Permission denied)" in errors.read_text()
    assert proc.get("/still-logged").status == 200
    while "/still-logged" not in Path(access + ".1").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "/still-logged" in Path(access + ".1").read_text() and not os.path.exists(access)
    assert proc.stop() == 0


def _proc_ids(pid: int) -> dict[str, list[str]]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {line.split()[0]: line.split()[1:] for line in status.splitlines()
            if line.startswith(("Uid:", "Gid:", "Groups:"))}


@pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root")
@pytest.mark.parametrize("user", [True, False], ids=["user-and-group", "group-only"])
def test_group_is_taken_and_supplementary_groups_dropped(tmp_path, exts_path, user):
    """Started as root with supplementary groups (as from a login shell), the server keeps
    none of them: only <group>, or the groups of <user> in the system's group database."""
    import grp
    import pwd

    from ocsi.testing import free_port, wait_for_port

    nobody, nogroup = pwd.getpwnam("nobody"), grp.getgrnam("nogroup")
    port = free_port()
    conf = tmp_path / "g.conf"
    conf.write_text(f"<ocsigen><server><port>127.0.0.1:{port}</port>"
                    f"{'<user>nobody</user>' if user else ''}<group>nogroup</group>"
                    f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
                    "<host><say text='x'/></host></server></ocsigen>")
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "-s", "-c", str(conf)],
                            preexec_fn=lambda: os.setgroups([4, 20, 27]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        # the port listens a moment before the privileges are dropped: wait for the drop
        deadline = time.monotonic() + 15
        ids = _proc_ids(proc.pid)
        while ids["Gid:"][0] == "0" and time.monotonic() < deadline:
            time.sleep(0.02)
            ids = _proc_ids(proc.pid)
        assert ids["Gid:"] == [str(nogroup.gr_gid)] * 4
        if user:
            assert ids["Uid:"] == [str(nobody.pw_uid)] * 4
            expected = {str(g) for g in os.getgrouplist("nobody", nogroup.gr_gid)}
            assert set(ids["Groups:"]) == expected and not {"4", "20", "27"} & expected
        else:
            assert ids["Uid:"] == ["0"] * 4 and ids["Groups:"] == []
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert (out, err) == (b"", b"")  # -s: silent, also when there is no <logdir>


def test_unknown_group_is_a_config_error(tmp_path):
    conf = tmp_path / "g.conf"
    conf.write_text("<ocsigen><server>\n<group>no-such-group-here</group></server></ocsigen>")
    r = ocsi("--check", "-c", str(conf))
    assert r.returncode == 50
    assert f"{conf}:2:1: unknown group no-such-group-here in <group>" in r.stderr


def test_unknown_user_is_a_config_error(tmp_path):
    conf = tmp_path / "u.conf"
    conf.write_text("<ocsigen><server><user>no-such-user-here</user></server></ocsigen>")
    r = ocsi("--check", "-c", str(conf))
    assert r.returncode == 50 and "unknown user no-such-user-here" in r.stderr


def _encrypted_pair(tmp_path, password: bytes):
    from cryptography.hazmat.primitives import serialization

    from ocsi.tls import self_signed
    cert, key = self_signed()
    k = serialization.load_pem_private_key(key, password=None)
    enc = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.BestAvailableEncryption(password))
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(enc)
    return cert


def test_encrypted_key_asks_for_its_password(tmp_path):
    import ssl
    import http.client
    cert = _encrypted_pair(tmp_path, b"s3cret")
    port = free_port()
    conf = tmp_path / "tls.conf"
    conf.write_text(f"""<ocsigen><server><port protocol="HTTPS">127.0.0.1:{port}</port>
      <ssl><certificate>{tmp_path}/c.pem</certificate><privatekey>{tmp_path}/k.pem</privatekey></ssl>
      </server></ocsigen>""")
    wrong = subprocess.run([sys.executable, "-m", "ocsi", "-c", str(conf)], input="nope\n",
                           capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 10 and "wrong password" in wrong.stderr
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "-c", str(conf)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"s3cret\n")
        proc.stdin.flush()
        ctx = ssl.create_default_context(cadata=cert.decode())
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=5)
                conn.request("GET", "/")
                assert conn.getresponse().status == 404
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_where_it_listens_is_said_at_the_default_level(ocsi_process, exts_path):
    proc = ocsi_process(f"<findlib path='{exts_path}'/><extension findlib-package='ocsi-ext-testbase'/>"
                        "<host><say text='x'/></host>")
    deadline = time.monotonic() + 10
    while "Listening" not in proc.stdout_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    out = proc.stdout_path.read_text()
    assert f"[NOTICE] Listening on http://127.0.0.1:{proc.port}/" in out
    assert "Command pipe created" not in out  # routine, below the default level
    proc.stop()
    assert "[WARNING]" not in proc.log("warnings")  # nothing routine passes for a warning
    assert proc.stderr_path.read_text() == ""


def test_help_lists_every_command_and_the_readme_names_them():
    r = ocsi("--help")
    assert r.returncode == 0
    commands = r.stdout.split("commands (ocsi COMMAND --help for each):", 1)[1]
    names = [line.split()[0] for line in commands.splitlines() if line.startswith("  ")]
    for name in ("serve", "proxy", "app", "reload", "shutdown", "reopen-logs", "command",
                 "extensions", "new-extension", "cert", "hash-password"):
        assert name in names, name
    readme = (REPO / "README.md").read_text()
    using = readme.split("## Using it", 1)[1].split("\n## ", 1)[0]
    for name in names:
        assert f"ocsi {name}" in using, f"README's 'Using it' does not show 'ocsi {name}'"
    for name in ("serve", "proxy", "app", "reload", "shutdown", "reopen-logs", "command",
                 "extensions", "new-extension", "cert"):
        assert ocsi(name, "--help").returncode == 0, name


def test_check_reports_a_static_directory_that_does_not_exist(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text('<ocsigen><server><port>8080</port>\n'
                    '<extension findlib-package="ocsigenserver.ext.staticmod"/>\n'
                    f'<host>\n<static dir="{tmp_path}/missing"/>\n<static dir="{tmp_path}"/>\n'
                    '</host></server></ocsigen>')
    r = ocsi("--check", "-c", str(conf))
    assert r.returncode == 0  # allowed, as in Ocsigen: it may be mounted later
    assert f"ocsi: warning: {conf}:4:1: <static dir=\"{tmp_path}/missing\">: does not exist" in r.stderr
    assert r.stderr.count("warning:") == 1
    assert "configuration OK" in r.stdout and "1 warning(s) above" in r.stdout
