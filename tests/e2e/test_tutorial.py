"""docs/tutorial.md, done as a reader does it: its files written, its commands run, its
answers checked.

The page's conventions (also in an HTML comment at its top):

- a fenced block with ``title="PATH"`` is a file, written at PATH in a fresh directory;
- the commands of the ``console`` blocks (``$ …`` lines) run in that directory, in order,
  with this interpreter's ``ocsi`` and ``python3`` first on the ``PATH`` and a fresh ``HOME``
  (so ``ocsi cert dev`` makes its own authority there);
- ``ocsi -c FILE`` and ``python3 -m http.server`` are servers: they are started, the test
  waits until their ports answer, and each ``ocsi -c`` stops the previous one (Ctrl-C: SIGINT);
- the lines shown under a command must be lines of its output, in order, ``…`` matching
  anything (a line that is only ``…`` stands for lines left out);
- the ports 8080, 8443 and 9000 become free ports everywhere (files, commands, answers).

``curl`` is the system's when there is one (and then the Python client below must give the
same bodies), else that client, which knows the options the page uses.
"""

from __future__ import annotations

import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ocsi.testing import free_port

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
PORTS = ("8080", "8443", "9000")
SERVERS = (("ocsi", "-c"), ("python3", "-m", "http.server"))
BLOCK = re.compile(r'^```(\w*)(?:[ \t]+title="([^"]+)")?[ \t]*\n(.*?)^```[ \t]*$', re.M | re.S)


@dataclass
class File:
    path: str
    text: str


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.line)

    @property
    def is_server(self) -> bool:
        argv = self.argv
        return any(tuple(argv[:len(s)]) == s for s in SERVERS)


def read_tutorial(text: str) -> list[File | Command]:
    """The files and commands of the page, in order."""
    out: list[File | Command] = []
    for m in BLOCK.finditer(text):
        lang, title, body = m.group(1), m.group(2), m.group(3)
        if title:
            out.append(File(title, body))
        elif lang == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    out.append(Command(line[2:].strip()))
                elif out and isinstance(out[-1], Command) and line.strip():
                    out[-1].expected.append(line.rstrip())
    return out


def with_ports(text: str, ports: dict[str, int]) -> str:
    """``text`` with the page's ports replaced; each is chosen when first met, just before the
    server that opens it starts (on a shared machine, a port chosen early may be taken)."""
    def port(m: re.Match[str]) -> str:
        if m.group(1) not in ports:
            ports[m.group(1)] = free_port()
        return str(ports[m.group(1)])
    return re.sub(r"\b(" + "|".join(PORTS) + r")\b", port, text)


def shows(expected: list[str], output: str) -> bool:
    """Every expected line is a line of ``output``, in order (``…`` matching anything)."""
    lines = [line.rstrip() for line in output.splitlines()]
    at = 0
    for want in expected:
        if want.strip() == "…":
            continue
        rx = re.compile(".*".join(re.escape(part) for part in want.split("…")))
        while at < len(lines) and not rx.fullmatch(lines[at]):
            at += 1
        if at == len(lines):
            return False
        at += 1
    return True


# -- curl's part the page uses, in Python ------------------------------------------------------------
def python_curl(argv: list[str]) -> str:
    """``curl [-s] [-i] [--cacert FILE] URL`` over HTTP/1.1 with http.client."""
    include, cafile, url = False, None, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "--cacert":
            cafile = next(args)
        elif arg.startswith("-") and set(arg[1:]) <= {"s", "i", "S"}:
            include = include or "i" in arg
        elif not arg.startswith("-") and url is None:
            url = arg
        else:
            raise AssertionError(f"the Python client does not know curl's {arg!r}: teach it")
    assert url is not None, "no URL"
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=30,
                                           context=ssl.create_default_context(cafile=cafile))
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     headers={"User-Agent": "curl/8"})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if not include:
        return body
    head = [f"HTTP/1.1 {resp.status} {resp.reason}", *(f"{k}: {v}" for k, v in resp.getheaders())]
    return "\r\n".join(head) + "\r\n\r\n" + body


# -- running the page ----------------------------------------------------------------------------------
class Reader:
    """The reader's directory, terminal and servers."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "site"
        self.dir.mkdir()
        self.home = tmp / "home"
        self.home.mkdir()
        self.ports: dict[str, int] = {}
        bindir = os.path.dirname(sys.executable)
        self.env = {**os.environ, "HOME": str(self.home),
                    "PATH": bindir + os.pathsep + os.environ["PATH"]}
        self.env.pop("XDG_DATA_HOME", None)
        self.ocsi: subprocess.Popen[bytes] | None = None
        self.servers: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.curl = shutil.which("curl")
        self.done: list[str] = []

    def argv(self, command: Command) -> list[str]:
        argv = shlex.split(with_ports(command.line, self.ports))
        return [str(self.home) + a[1:] if a.startswith("~/") else a for a in argv]

    def write(self, f: File) -> None:
        path = self.dir / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(with_ports(f.text, self.ports))

    def run(self, command: Command) -> None:
        argv = self.argv(command)
        expected = [with_ports(line, self.ports) for line in command.expected]
        if command.is_server:
            assert not expected, f"{command.line}: a server's output is not checked"
            self.start(argv)
        elif argv[0] == "curl":
            output = self.request(argv)
            assert shows(expected, output), f"$ {command.line}\nshown:\n{expected}\ngot:\n{output}"
        else:
            r = subprocess.run(argv, cwd=self.dir, env=self.env, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, f"$ {command.line}: exit {r.returncode}\n{r.stdout}{r.stderr}"
            assert shows(expected, r.stdout), f"$ {command.line}\nshown:\n{expected}\ngot:\n{r.stdout}"
        self.done.append(command.line)

    def request(self, argv: list[str]) -> str:
        ours = python_curl(argv)
        if self.curl is None:
            return ours
        r = subprocess.run([self.curl, *argv[1:]], cwd=self.dir, env=self.env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr}"
        if not any(re.fullmatch(r"-[a-zA-Z]*i[a-zA-Z]*", a) for a in argv):  # heads differ (HTTP/2)
            assert ours == r.stdout, "curl and the Python client disagree"
        return r.stdout

    def start(self, argv: list[str]) -> None:
        is_ocsi = argv[0] == "ocsi"
        if is_ocsi:
            self.stop_ocsi()
            conf = (self.dir / argv[argv.index("-c") + 1]).read_text()
            ports = [int(p) for p in re.findall(r"(\d+)</port>", conf)]
        else:
            ports = [int(a) for a in argv if a.isdigit()]
        log = self.dir / f"server-{len(self.servers)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.servers.append((proc, log))
        if is_ocsi:
            self.ocsi = proc
        deadline = time.monotonic() + 30
        for port in ports:
            while True:
                assert proc.poll() is None, f"{argv} exited {proc.returncode}:\n{log.read_text()}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{argv}: port {port} not open in 30 s"
                    time.sleep(0.05)

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def stop_ocsi(self) -> None:
        if self.ocsi is not None:
            code = self.stop(self.ocsi)
            assert code == 0, f"ocsi exited {code} on Ctrl-C"
            self.ocsi = None

    def close(self) -> None:
        for proc, _ in self.servers:
            self.stop(proc)


def test_the_page_reads_as_expected() -> None:
    """The conventions find the four steps (a format change must not make the test vacuous)."""
    items = read_tutorial(TUTORIAL.read_text(encoding="utf-8"))
    files = [i.path for i in items if isinstance(i, File)]
    commands = [i for i in items if isinstance(i, Command)]
    assert [f for f in files if f.endswith(".conf")] == [f"step{n}.conf" for n in (1, 2, 3, 4)]
    for n in (1, 2, 3, 4):
        assert any(c.line == f"ocsi --check -c step{n}.conf" and c.expected for c in commands)
        assert any(c.line == f"ocsi -c step{n}.conf" for c in commands)
    assert any(c.line.startswith("ocsi cert dev") for c in commands)
    assert sum(c.line.startswith("curl ") and bool(c.expected) for c in commands) >= 7


def test_shows_matches_lines_in_order() -> None:
    assert shows(["a …", "…", "c"], "x\na 1\nb\nc\n")
    assert not shows(["c", "a …"], "a 1\nc\n")
    assert not shows(["a"], "ab\n")


def test_the_tutorial_works(tmp_path: Path) -> None:
    reader = Reader(tmp_path)
    try:
        for item in read_tutorial(TUTORIAL.read_text(encoding="utf-8")):
            if isinstance(item, File):
                reader.write(item)
            else:
                reader.run(item)
        reader.stop_ocsi()
    finally:
        reader.close()
    assert len(reader.done) >= 15
