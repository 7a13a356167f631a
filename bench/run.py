#!/usr/bin/env python3
"""Benchmark ocsi against reference servers (nginx, Ocsigen, hypercorn, aiohttp) in one run.

Why this shape:

* Every number is only meaningful *relative to* a reference measured on the
  same machine in the same run, so the script measures all servers back to
  back and prints ratios to a baseline (ocsi by default).
* The machine has 2 cores: the server is pinned to one (``taskset -c 0``)
  and the load generator to the other (``taskset -c 1 wrk -t1``) so they do
  not steal CPU from each other and every server gets exactly one core.
* Each (scenario, server) pair gets a fresh server process with a config
  written from ``bench/configs/`` into a temporary directory, so no state
  (caches, open connections, log size) leaks from one measurement into the
  next, and nothing is written outside that temporary directory.
* Everything is bounded in time: server start-up, the sanity request, the
  warm-up and the measured wrk run all have timeouts, and the server's whole
  process group is always stopped in a ``finally``.
* ocsi is still being written: if it cannot start (missing binary, unknown
  config element, ...) the pair is reported as skipped, never as a crash.

Stdlib only; run with the Python that has ocsi installed: ``.venv/bin/python bench/run.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gzip
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CONFIG_DIR = BENCH_DIR / "configs"

TINY_BODY = b"hello, world\n"
SMALL_SIZE = 100
BIG_SIZE = 1024 * 1024

SERVER_START_TIMEOUT = 20.0
"""Seconds a server gets to open its port (ocsigen loads plugins, hypercorn spawns)."""
SERVER_STOP_TIMEOUT = 5.0
"""Seconds between SIGTERM and SIGKILL of a server's process group."""


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One load pattern.  ``kind`` tells each server which config/URL to use."""

    name: str
    kind: str  # tiny | small | big | notfound | newconn | gzip | ipcheck
    connections: int
    description: str
    headers: tuple[str, ...] = ()
    expect_status: int = 200
    expect_gzip: bool = False


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("tiny-1", "tiny", 1, "tiny fixed response, 1 keep-alive connection (latency)"),
        Scenario("tiny-64", "tiny", 64, "tiny fixed response, 64 keep-alive connections"),
        Scenario("mem-1", "mem", 1, "100 bytes from memory (ocsi <tiny size=100>, uvicorn's "
                 "plain ASGI app), 1 connection"),
        Scenario("mem-64", "mem", 64, "100 bytes from memory, 64 keep-alive connections"),
        Scenario("small-1", "small", 1, "100-byte static file, 1 keep-alive connection"),
        Scenario("small-64", "small", 64, "100-byte static file, 64 keep-alive connections"),
        Scenario("big-16", "big", 16, "1 MiB static file, 16 connections"),
        Scenario("notfound-64", "notfound", 64, "404 for a missing file, 64 connections",
                 expect_status=404),
        Scenario("newconn", "newconn", 16,
                 "100-byte file, new TCP connection per request (Connection: close), 16 conns",
                 headers=("Connection: close",)),
        Scenario("gzip-16", "gzip", 16, "~20 KB HTML compressed on the fly, 16 connections",
                 headers=("Accept-Encoding: gzip",), expect_gzip=True),
        Scenario("ipcheck-64", "ipcheck", 64,
                 "100-byte file behind an IP access rule (10.0.0.0/8 forbidden), 64 conns"),
        Scenario("proxy-small-64", "proxy-small", 64,
                 "100-byte response through a reverse proxy (nginx backend), 64 connections"),
        Scenario("proxy-big-16", "proxy-big", 16,
                 "1 MiB response through a reverse proxy (nginx backend), 16 connections"),
        Scenario("asgi-1", "app-asgi", 1, "plain ASGI app, 100-byte body, 1 connection"),
        Scenario("asgi-64", "app-asgi", 64, "plain ASGI app, 100-byte body, 64 connections"),
        Scenario("starlette-64", "app-starlette", 64, "one Starlette route, 100 bytes, 64 conns"),
        Scenario("wsgi-64", "app-wsgi", 64, "plain WSGI app, 100-byte body, 64 connections"),
    )
}

# Paths of the generated document root used by the static-file servers.
STATIC_PATHS: dict[str, str] = {
    "small": "/small.txt",
    "big": "/big.bin",
    "notfound": "/does-not-exist.txt",
    "newconn": "/small.txt",
    "gzip": "/page.html",
    "ipcheck": "/small.txt",
    "proxy-small": "/small.txt",
    "proxy-big": "/big.bin",
    "app-asgi": "/",
    "app-starlette": "/",
    "app-wsgi": "/",
}

#: The application each application row serves (bench/apps.py) and how ocsi names it.
APPS = {"app-asgi": ("asgi", "apps:plain"), "app-starlette": ("asgi", "apps:starlette_app"),
        "app-wsgi": ("wsgi", "apps:wsgi")}


def is_app(sc: Scenario) -> bool:
    return sc.kind.startswith("app-")


# --------------------------------------------------------------------------
# Test data
# --------------------------------------------------------------------------

_WORDS = (
    "server request response header static module extension configuration "
    "host site directory file content type encoding cache connection client "
    "the a of to and in for with on is are be this that from by as at it "
    "performance latency throughput ocaml python event loop socket buffer"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def make_page_html(target_size: int = 20_000) -> str:
    """Build a deterministic ~20 KB HTML page that compresses like a real one.

    Random bytes would not compress and a repeated string compresses far too
    well; real pages are markup plus prose with a limited vocabulary, which is
    what this generates (gzip -6 shrinks it ~4x, 20.6 KB -> 5.2 KB, like
    typical HTML).
    """
    rng = random.Random(20240601)
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>ocsi benchmark page</title>\n"
        "<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n<body>\n"
        "<header class=\"site-header\"><nav><ul>\n"
        + "".join(f"  <li><a href=\"/section/{i}\">Section {i}</a></li>\n" for i in range(8))
        + "</ul></nav></header>\n<main>\n"
    )
    tail = "</main>\n<footer class=\"site-footer\"><p>Generated for benchmarks.</p></footer>\n</body>\n</html>\n"
    parts: list[str] = [head]
    size = len(head) + len(tail)
    n = 0
    while size < target_size:
        n += 1
        if n % 5 == 0:
            rows = "".join(
                f"<tr><td>{rng.choice(_WORDS)}</td><td>{rng.randint(0, 99999)}</td>"
                f"<td class=\"num\">{rng.random():.3f}</td></tr>\n"
                for _ in range(4)
            )
            block = f"<table class=\"data\">\n<tbody>\n{rows}</tbody>\n</table>\n"
        else:
            paras = "".join(
                f"<p>{' '.join(_sentence(rng) for _ in range(rng.randint(2, 4)))}</p>\n"
                for _ in range(2)
            )
            block = (
                f"<article id=\"post-{n}\" class=\"post\">\n<h2><a href=\"/post/{n}\">"
                f"{_sentence(rng)[:-1]}</a></h2>\n{paras}</article>\n"
            )
        parts.append(block)
        size += len(block)
    parts.append(tail)
    return "".join(parts)


def make_docroot(root: Path) -> None:
    """Create the files every static server serves (same bytes for all)."""
    root.mkdir(parents=True, exist_ok=True)
    small = (b"0123456789abcdef" * 7)[: SMALL_SIZE - 1] + b"\n"
    assert len(small) == SMALL_SIZE
    (root / "small.txt").write_bytes(small)
    (root / "big.bin").write_bytes(random.Random(1).randbytes(BIG_SIZE))
    (root / "page.html").write_text(make_page_html(), encoding="utf-8")
    (root / "tiny.txt").write_bytes(TINY_BODY)
    (root / "index.html").write_text(
        "<!DOCTYPE html>\n<html><head><title>ocsi bench</title></head>"
        "<body><p>ocsi benchmark document root</p></body></html>\n",
        encoding="utf-8",
    )
    # deployed an hour ago, as a site's files are (servers that cache by modification time,
    # like ocsi's compressed-file cache, do not trust a file written a moment ago)
    then = time.time() - 3600
    for f in root.iterdir():
        os.utime(f, (then, then))


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class Skip(Exception):
    """This server does not apply to / cannot run this scenario; say why."""


@dataclass
class Target:
    """How to run one server for one scenario."""

    argv: list[str]
    path: str
    note: str = ""
    cwd: Optional[Path] = None


@dataclass
class Context:
    """Things every server needs to build its command line."""

    docroot: Path
    args: argparse.Namespace
    #: Port of the backend the proxy rows forward to (None: not started, no proxy row).
    backend_port: Optional[int] = None


def is_proxy(sc: Scenario) -> bool:
    return sc.kind.startswith("proxy-")


def _backend_url(ctx: Context) -> str:
    if ctx.backend_port is None:
        raise Skip("no backend for the proxy rows (nginx not installed: bench/install.sh)")
    return f"http://127.0.0.1:{ctx.backend_port}"


def fill_template(name: str, out: Path, values: dict[str, str]) -> Path:
    """Copy ``configs/NAME`` to ``out`` replacing every ``@KEY@`` placeholder."""
    text = (CONFIG_DIR / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"unfilled placeholders {leftover} in {name}")
    out.write_text(text, encoding="utf-8")
    return out


def _ocsigen_like_variant(kind: str) -> str:
    return {"gzip": "deflate", "ipcheck": "ipcheck"}.get(kind, "static")


class Server:
    """A server under test.  Subclasses say how to start it for a scenario."""

    name: str = ""

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        raise NotImplementedError

    def version(self, ctx: Context) -> str:
        return ""


class Ocsi(Server):
    """The server being developed; command and tiny path are command-line options.

    ``ocsi`` runs the configurations as they are (httptools reads heads when installed, the
    default); ``ocsi-httptools`` and ``ocsi-h11`` add ``<httpparser>`` to each one."""

    def __init__(self, parser: str | None = None) -> None:
        self.parser = parser
        self.name = "ocsi" if parser is None else f"ocsi-{parser}"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        cmd = shlex.split(ctx.args.ocsi_cmd)
        if not cmd or not (shutil.which(cmd[0]) or Path(cmd[0]).exists()):
            raise Skip(f"ocsi command not found: {ctx.args.ocsi_cmd!r}")
        variant = "tiny" if sc.kind in ("tiny", "mem") else _ocsigen_like_variant(sc.kind)
        values = {"PORT": str(port), "DOCROOT": str(ctx.docroot), "RUNDIR": str(rundir),
                  "BENCHDIR": str(Path(__file__).resolve().parent),
                  "TINY": '<tiny size="100"/>' if sc.kind == "mem" else "<tiny/>"}
        if is_proxy(sc):
            variant = "proxy"
            values["BACKEND"] = _backend_url(ctx)
        if is_app(sc):
            variant = "app"
            values["ELEMENT"], values["APP"] = APPS[sc.kind]
        conf = fill_template(f"ocsi-{variant}.xml", rundir / "ocsi.xml", values)
        if self.parser is not None:
            text = conf.read_text(encoding="utf-8")
            conf.write_text(text.replace("<server>", f"<server><httpparser>{self.parser}"
                                         "</httpparser>", 1), encoding="utf-8")
        (rundir / "log").mkdir(exist_ok=True)
        argv = [a.replace("{config}", str(conf)) for a in cmd]
        path = ctx.args.ocsi_tiny_path if sc.kind in ("tiny", "mem") else STATIC_PATHS[sc.kind]
        return Target(argv, path, cwd=REPO_DIR)

    def version(self, ctx: Context) -> str:
        return ctx.args.ocsi_cmd


class Ocsigen(Server):
    """Ocsigen Server 5 (native binary) with staticmod/deflatemod/accesscontrol."""

    name = "ocsigen"

    def binary(self, ctx: Context) -> Optional[str]:
        if ctx.args.ocsigen_bin:
            return ctx.args.ocsigen_bin
        for cand in ("/usr/bin/ocsigenserver.opt", "/usr/lib/ocsigenserver/ocsigenserver.opt"):
            if os.access(cand, os.X_OK):
                return cand
        return shutil.which("ocsigenserver.opt") or shutil.which("ocsigenserver")

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        if is_app(sc):
            raise Skip("n/a (Python application rows)")
        binary = self.binary(ctx)
        if not binary:
            raise Skip("ocsigenserver not installed (bench/install.sh)")
        values = {"PORT": str(port), "DOCROOT": str(ctx.docroot), "RUNDIR": str(rundir)}
        variant = _ocsigen_like_variant(sc.kind)
        if is_proxy(sc):
            variant = "proxy"
            values["BACKEND"] = _backend_url(ctx)
        conf = fill_template(f"ocsigen-{variant}.xml", rundir / "ocsigen.xml", values)
        for sub in ("log", "data"):
            (rundir / sub).mkdir(exist_ok=True)
        # Stock ocsigenserver has no in-memory responder without Eliom, so the
        # tiny scenarios serve a 13-byte file with staticmod.
        if sc.kind == "mem":
            raise Skip("n/a (no in-memory responder without Eliom)")
        path = "/tiny.txt" if sc.kind == "tiny" else STATIC_PATHS[sc.kind]
        note = "static tiny.txt" if sc.kind == "tiny" else ""
        return Target([binary, "-c", str(conf)], path, note=note)

    def version(self, ctx: Context) -> str:
        return _dpkg_version("ocsigenserver")


class Nginx(Server):
    """nginx with one process, in the foreground; the C reference."""

    name = "nginx"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        if is_app(sc):
            raise Skip("n/a (Python application rows)")
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if not binary:
            raise Skip("nginx not installed (bench/install.sh)")
        variant = ""
        if sc.kind == "gzip":
            variant = (CONFIG_DIR / "nginx-gzip.inc").read_text(encoding="utf-8")
        elif sc.kind == "ipcheck":
            variant = (CONFIG_DIR / "nginx-ipcheck.inc").read_text(encoding="utf-8")
        access_log = "off" if ctx.args.nginx_access_log == "off" else f"{rundir}/access.log"
        if is_proxy(sc):
            _backend_url(ctx)
            conf = fill_template("nginx-proxy.conf", rundir / "nginx.conf", {
                "PORT": str(port), "RUNDIR": str(rundir), "ACCESS_LOG": access_log,
                "BACKEND_PORT": str(ctx.backend_port)})
            return Target([binary, "-p", str(rundir), "-c", str(conf), "-e",
                           str(rundir / "error.log")], STATIC_PATHS[sc.kind])
        conf = fill_template(
            "nginx.conf",
            rundir / "nginx.conf",
            {
                "PORT": str(port),
                "DOCROOT": str(ctx.docroot),
                "RUNDIR": str(rundir),
                "ACCESS_LOG": access_log,
                "VARIANT": variant.rstrip("\n"),
            },
        )
        path = {"tiny": "/tiny", "mem": "/mem"}.get(sc.kind) or STATIC_PATHS[sc.kind]
        # -e: the Debian build logs to stderr until the config is read.
        return Target([binary, "-p", str(rundir), "-c", str(conf), "-e", str(rundir / "error.log")], path)

    def version(self, ctx: Context) -> str:
        return _dpkg_version("nginx-light") or _dpkg_version("nginx")


class Hypercorn(Server):
    """hypercorn + bench/hypercorn_app.py; the Python reference (no static files)."""

    APPLIES = {"tiny": "/", "notfound": "/does-not-exist", "newconn": "/"}

    def __init__(self, worker_class: str = "asyncio") -> None:
        self.worker_class = worker_class
        self.name = "hypercorn" if worker_class == "asyncio" else f"hypercorn-{worker_class}"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        if sc.kind not in self.APPLIES:
            raise Skip("n/a (ASGI app serves no files)")
        exe = Path(sys.executable).with_name("hypercorn")
        if not exe.exists():
            found = shutil.which("hypercorn")
            if not found:
                raise Skip("hypercorn not installed (pip install hypercorn)")
            exe = Path(found)
        if self.worker_class == "uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                raise Skip("uvloop not installed")
        argv = [str(exe), "--workers", "1", "-k", self.worker_class,
                "--bind", f"127.0.0.1:{port}", "bench.hypercorn_app:app"]
        note = "ASGI tiny body" if sc.kind == "newconn" else ""
        return Target(argv, self.APPLIES[sc.kind], note=note, cwd=REPO_DIR)

    def version(self, ctx: Context) -> str:
        try:
            from importlib.metadata import version

            return version("hypercorn")
        except Exception:  # pragma: no cover - informative only
            return ""


def _asgi_server(sc: Scenario, name: str, kinds: tuple[str, ...]) -> Path:
    """The executable of the ASGI server ``name`` beside this Python, for the rows it serves
    (:class:`Skip` otherwise, or when it is not installed)."""
    if sc.kind not in kinds:
        raise Skip("n/a (ASGI rows only)")
    exe = Path(sys.executable).with_name(name)
    if not exe.exists():
        raise Skip(f"{name} not installed (bench/install.sh)")
    return exe


class Uvicorn(Server):
    """uvicorn with httptools and uvloop, its fastest setting, on the same ASGI apps."""

    name = "uvicorn"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        exe = _asgi_server(sc, "uvicorn", ("app-asgi", "app-starlette", "mem"))
        argv = [str(exe), "--http", "httptools", "--loop", "uvloop", "--host", "127.0.0.1",
                "--port", str(port), "--app-dir", str(BENCH_DIR),
                APPS["app-asgi" if sc.kind == "mem" else sc.kind][1]]
        return Target(argv, "/", note="access log to the terminal (a file)", cwd=REPO_DIR)

    def version(self, ctx: Context) -> str:
        try:
            from importlib.metadata import version

            return version("uvicorn")
        except Exception:  # pragma: no cover - informative only
            return ""


class UvicornNoLog(Uvicorn):
    """uvicorn as above with ``--no-access-log``: its bare path, the figure it is usually
    quoted with."""

    name = "uvicorn-nolog"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        t = super().target(sc, port, rundir, ctx)
        return Target([*t.argv[:-1], "--no-access-log", t.argv[-1]], t.path, note="no access log",
                      cwd=t.cwd)


class Granian(Server):
    """granian (Rust HTTP layer, one worker, its default: no access log) on the same ASGI apps."""

    name = "granian"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        exe = _asgi_server(sc, "granian", ("app-asgi", "app-starlette", "mem"))
        argv = [str(exe), "--interface", "asgi", "--workers", "1", "--loop", "uvloop",
                "--host", "127.0.0.1", "--port", str(port),
                APPS["app-asgi" if sc.kind == "mem" else sc.kind][1]]
        return Target(argv, "/", note="no access log", cwd=BENCH_DIR)

    def version(self, ctx: Context) -> str:
        try:
            from importlib.metadata import version

            return version("granian")
        except Exception:  # pragma: no cover - informative only
            return ""


class HypercornApps(Server):
    """hypercorn (uvloop) on the same ASGI apps."""

    name = "hypercorn-apps"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        exe = _asgi_server(sc, "hypercorn", ("app-asgi", "app-starlette"))
        argv = [str(exe), "--workers", "1", "-k", "uvloop", "--bind", f"127.0.0.1:{port}",
                "--access-logfile", str(rundir / "access.log"), "apps:" + APPS[sc.kind][1].split(":")[1]]
        return Target(argv, "/", cwd=BENCH_DIR)


class Gunicorn(Server):
    """gunicorn with its gthread worker (one process) on the WSGI app."""

    name = "gunicorn"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        if sc.kind != "app-wsgi":
            raise Skip("n/a (WSGI row only)")
        exe = Path(sys.executable).with_name("gunicorn")
        if not exe.exists():
            raise Skip("gunicorn not installed (bench/install.sh)")
        argv = [str(exe), "-w", "1", "-k", "gthread", "--threads", "30", "-b", f"127.0.0.1:{port}",
                "--access-logfile", str(rundir / "access.log"), "apps:wsgi"]
        return Target(argv, "/", cwd=BENCH_DIR)


class AiohttpProxy(Server):
    """aiohttp's server and pooled client (bench/aiohttp_proxy.py): the Python proxy peer."""

    name = "aiohttp"

    def target(self, sc: Scenario, port: int, rundir: Path, ctx: Context) -> Target:
        if not is_proxy(sc):
            raise Skip("n/a (proxy rows only)")
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            raise Skip("aiohttp not installed (bench/install.sh)")
        argv = [sys.executable, str(BENCH_DIR / "aiohttp_proxy.py"), str(port), _backend_url(ctx)]
        return Target(argv, STATIC_PATHS[sc.kind], note="no access log", cwd=REPO_DIR)

    def version(self, ctx: Context) -> str:
        try:
            from importlib.metadata import version

            return version("aiohttp")
        except Exception:  # pragma: no cover - informative only
            return ""


@contextlib.contextmanager
def proxy_backend(ctx: Context, workroot: Path, needed: bool) -> Iterator[None]:
    """The nginx backend of the proxy rows, pinned with the load generator; None if unneeded
    or nginx is missing (the proxy rows are then skipped)."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not needed or not binary:
        yield
        return
    rundir = workroot / "backend"
    rundir.mkdir()
    port = free_port()
    conf = fill_template("nginx-backend.conf", rundir / "nginx.conf",
                         {"PORT": str(port), "DOCROOT": str(ctx.docroot), "RUNDIR": str(rundir)})
    target = Target([binary, "-p", str(rundir), "-c", str(conf), "-e", str(rundir / "error.log")], "/")
    with running_server(target, port, rundir, ctx.args.client_cpu):
        ctx.backend_port = port
        try:
            yield
        finally:
            ctx.backend_port = None


def all_servers() -> dict[str, Server]:
    servers: list[Server] = [Ocsi(), Ocsi("httptools"), Ocsi("h11"), Nginx(), Ocsigen(), Hypercorn("asyncio"), Hypercorn("uvloop"),
                             AiohttpProxy(), Uvicorn(), UvicornNoLog(), Granian(), HypercornApps(),
                             Gunicorn()]
    return {s.name: s for s in servers}


def _dpkg_version(pkg: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


# --------------------------------------------------------------------------
# Process control
# --------------------------------------------------------------------------


def wait_answering(proc: subprocess.Popen, url: str, name: str, timeout: float = 20) -> None:
    """Until ``url`` answers (curl, certificates not checked); RuntimeError if ``proc`` exits
    or ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["curl", "-sk", "-o", "/dev/null", url], timeout=5).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.2)


def free_port() -> int:
    """Ask the kernel for a free loopback port (tiny race, acceptable here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


class ServerStartError(Exception):
    """The server exited or never opened its port."""


@contextlib.contextmanager
def running_server(target: Target, port: int, rundir: Path, cpu: str) -> Iterator[subprocess.Popen]:
    """Start ``target`` pinned to ``cpu``; always kill its whole process group.

    A new session is used so hypercorn's spawned worker, or anything else a
    server forks, goes down with it.
    """
    log_path = rundir / "server.out"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", cpu, *target.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(target.cwd) if target.cwd else str(rundir),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"exited with code {proc.returncode}\n{_tail(log_path)}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"port {port} not open after {SERVER_START_TIMEOUT:.0f}s\n{_tail(log_path)}"
                )
            time.sleep(0.05)
        yield proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, SERVER_STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no child (e.g. a hypercorn worker) is left.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


_FILE_SIZES = {"/small.txt": SMALL_SIZE, "/big.bin": BIG_SIZE, "/tiny.txt": len(TINY_BODY)}


def sanity_check(port: int, sc: Scenario, path: str) -> str:
    """Make one request like wrk will, so we never benchmark an error page.

    Returns a short description of the response (status, length, encoding).
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = dict(h.split(": ", 1) for h in sc.headers)
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    enc = (resp.getheader("Content-Encoding") or "").lower()
    if resp.status != sc.expect_status:
        raise ServerStartError(f"GET {path} -> {resp.status}, expected {sc.expect_status}")
    if sc.expect_gzip:
        if enc != "gzip":
            raise ServerStartError(f"GET {path} not gzip-encoded (Content-Encoding={enc!r})")
        body = gzip.decompress(body)
    expected_len = _FILE_SIZES.get(path)
    if expected_len is not None and len(body) != expected_len:
        raise ServerStartError(f"GET {path} returned {len(body)} bytes, expected {expected_len}")
    return f"{resp.status} {len(body)}B{' gzip' if enc == 'gzip' else ''}"


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not m:
        raise ValueError(f"bad wrk time {value!r}")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


@dataclass
class WrkResult:
    """Numbers parsed from wrk's text output (latencies in ms)."""

    requests: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    transfer_bps: float = 0.0
    latency_avg_ms: float = 0.0
    latency_stdev_ms: float = 0.0
    latency_max_ms: float = 0.0
    p50_ms: float = 0.0
    p75_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)


def parse_wrk(text: str) -> WrkResult:
    """Parse ``wrk --latency`` output; raise ValueError if the summary is missing."""
    r = WrkResult()
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise ValueError("no Requests/sec line in wrk output")
    r.rps = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)", text)
    if m:
        r.transfer_bps = float(m.group(1)) * _BYTE_UNITS[m.group(2)]
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    if m:
        r.requests = int(m.group(1))
        r.duration_s = _ms(m.group(2) + m.group(3)) / 1000
    m = re.search(r"Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", text)
    if m:
        r.latency_avg_ms, r.latency_stdev_ms, r.latency_max_ms = (_ms(g) for g in m.groups())
    for pct in (50, 75, 90, 99):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+\w+)", text, re.M)
        if m:
            setattr(r, f"p{pct}_ms", _ms(m.group(1)))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r.non_2xx_3xx = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    return r


def run_wrk(url: str, sc: Scenario, duration: int, cpu: str, latency: bool = True) -> tuple[WrkResult, str]:
    """Run wrk pinned to ``cpu`` for ``duration`` seconds (hard timeout +30s).

    ``--timeout 5s`` makes a stalled server show up as wrk timeouts instead
    of wrk waiting on it; ``-t1`` because wrk has one core to itself.
    """
    argv = ["taskset", "-c", cpu, "wrk", "-t1", f"-c{sc.connections}",
            f"-d{max(1, duration)}s", "--timeout", "5s"]
    if latency:
        argv.append("--latency")
    for h in sc.headers:
        argv += ["-H", h]
    argv.append(url)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return parse_wrk(proc.stdout), proc.stdout


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------


@dataclass
class Measurement:
    """One cell of the result tables."""

    scenario: str
    server: str
    status: str  # ok | skipped | failed
    message: str = ""
    note: str = ""
    url: str = ""
    check: str = ""
    result: Optional[WrkResult] = None


def measure(server: Server, sc: Scenario, ctx: Context, workroot: Path) -> Measurement:
    """Start ``server`` for ``sc``, check it, warm it up, load it, stop it."""
    args = ctx.args
    rundir = workroot / "runs" / f"{server.name}-{sc.name}"
    rundir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    try:
        target = server.target(sc, port, rundir, ctx)
    except Skip as e:
        return Measurement(sc.name, server.name, "skipped", str(e))
    url = f"http://127.0.0.1:{port}{target.path}"
    m = Measurement(sc.name, server.name, "failed", note=target.note, url=url)
    try:
        with running_server(target, port, rundir, args.server_cpu):
            m.check = sanity_check(port, sc, target.path)
            if args.warmup > 0:
                run_wrk(url, sc, args.warmup, args.client_cpu, latency=False)
            m.result, raw = run_wrk(url, sc, args.duration, args.client_cpu)
            (rundir / "wrk.txt").write_text(raw)
            m.status = "ok"
    except ServerStartError as e:
        m.status = "skipped" if server.name == "ocsi" else "failed"
        m.message = f"did not start/answer correctly: {e}"
    except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired, http.client.HTTPException) as e:
        m.message = f"{type(e).__name__}: {e}"
    if m.result and sc.expect_status < 400 and m.result.non_2xx_3xx:
        m.message = f"{m.result.non_2xx_3xx} non-2xx/3xx responses"
    if m.result and any(m.result.socket_errors.values()):
        errs = ", ".join(f"{k} {v}" for k, v in m.result.socket_errors.items() if v)
        m.message = (m.message + "; " if m.message else "") + f"socket errors: {errs}"
    return m


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def _fmt_rate(m: Optional[Measurement]) -> str:
    if m is None or m.status == "skipped":
        return "—"
    if m.status != "ok" or not m.result:
        return "FAIL"
    return f"{m.result.rps:,.0f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(results: list[Measurement], scenarios: list[Scenario],
                    servers: list[str], baseline: str) -> str:
    """Requests/s, transfer, latency and ratio-to-baseline tables."""
    by = {(m.scenario, m.server): m for m in results}
    out: list[str] = []

    out.append("Requests per second (higher is better):\n")
    rows = [[f"`{sc.name}` ({sc.connections}c)"] + [_fmt_rate(by.get((sc.name, s))) for s in servers]
            for sc in scenarios]
    out.append(_table(["scenario", *servers], rows))

    def cell(sc: Scenario, s: str, fmt: Callable[[WrkResult], str]) -> str:
        m = by.get((sc.name, s))
        if m is None or m.status != "ok" or not m.result:
            return "—"
        return fmt(m.result)

    out.append("\nTransfer (MiB/s):\n")
    rows = [[sc.name] + [cell(sc, s, lambda r: f"{r.transfer_bps / 2**20:,.1f}") for s in servers]
            for sc in scenarios]
    out.append(_table(["scenario", *servers], rows))

    out.append("\nLatency p50 / p99 (ms):\n")
    rows = [[sc.name] + [cell(sc, s, lambda r: f"{r.p50_ms:.2f} / {r.p99_ms:.2f}") for s in servers]
            for sc in scenarios]
    out.append(_table(["scenario", *servers], rows))

    others = [s for s in servers if s != baseline]
    have_baseline = any(m.server == baseline and m.status == "ok" for m in results)
    if others and not have_baseline:
        out.append(f"\nNo {baseline} results, so no ratios (use --baseline to pick another server).")
    elif others:
        out.append(f"\nRatio to {baseline} (server req/s ÷ {baseline} req/s; >1 means faster than {baseline}):\n")
        rows = []
        for sc in scenarios:
            b = by.get((sc.name, baseline))
            row = [sc.name]
            for s in others:
                m = by.get((sc.name, s))
                if (b and b.status == "ok" and b.result and b.result.rps > 0
                        and m and m.status == "ok" and m.result):
                    row.append(f"{m.result.rps / b.result.rps:.2f}×")
                else:
                    row.append("—")
            rows.append(row)
        out.append(_table(["scenario", *others], rows))

    # Group identical notes so "ocsi skipped: not installed" appears once.
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for m in results:
        if m.status == "skipped" and m.message.startswith("n/a"):
            continue
        text = "; ".join(x for x in (m.note, m.message.splitlines()[0] if m.message else "") if x)
        if m.status == "ok" and m.message:
            # wrk counters differ in every run; keep the kind, not the number.
            text = "; ".join(x for x in (m.note, m.message) if x)
        if text:
            grouped.setdefault((m.server, m.status, text), []).append(m.scenario)
    if grouped:
        out.append("\nNotes:\n")
        for (server, status, text), scs in grouped.items():
            out.append(f"- {server} [{status}] {', '.join(scs)}: {text}")
    return "\n".join(out) + "\n"


def environment(ctx: Context, servers: dict[str, Server], names: list[str]) -> dict[str, object]:
    """Machine and version facts recorded next to the numbers."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "wrk": _dpkg_version("wrk"),
        "duration_s": ctx.args.duration,
        "warmup_s": ctx.args.warmup,
        "server_cpu": ctx.args.server_cpu,
        "client_cpu": ctx.args.client_cpu,
        "versions": {n: servers[n].version(ctx) for n in names},
    }


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark ocsi against nginx, Ocsigen and hypercorn (see bench/README.md).")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated scenario names (default: all; see --list)")
    p.add_argument("--servers", default="ocsi,nginx,ocsigen,hypercorn,aiohttp",
                   help="comma-separated among: " + ",".join(all_servers()))
    p.add_argument("--duration", type=int, default=5, help="whole seconds of measured load per cell")
    p.add_argument("--warmup", type=int, default=1, help="whole seconds of unmeasured load first (0: none)")
    p.add_argument("--rounds", type=int, default=1,
                   help="runs per cell, servers taking turns; the best run of each is kept")
    p.add_argument("--json", metavar="PATH", help="also write all results as JSON here")
    p.add_argument("--baseline", default="ocsi", help="server the ratios are computed against")
    p.add_argument("--ocsi-cmd", default=f"{shlex.quote(sys.executable)} -m ocsi -c {{config}}",
                   help="ocsi command line; {config} is replaced by the generated config path")
    p.add_argument("--ocsi-tiny-path", default="/", help="URL path ocsi's <tiny/> answers on")
    p.add_argument("--ocsigen-bin", default="", help="path of ocsigenserver(.opt); default: autodetect")
    p.add_argument("--nginx-access-log", choices=("file", "off"), default="file",
                   help="nginx access log: to a file like Ocsigen always does (default), or off")
    p.add_argument("--server-cpu", default="0", help="CPU list for the server (taskset -c)")
    p.add_argument("--client-cpu", default="1", help="CPU list for wrk (taskset -c)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs, wrk output)")
    p.add_argument("--list", action="store_true", help="list scenarios and servers, then exit")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    servers = all_servers()
    if args.list:
        for sc in SCENARIOS.values():
            print(f"{sc.name:12} {sc.description}")
        print("servers:", ", ".join(servers))
        return 0
    bad = [s for s in _csv(args.scenarios) if s not in SCENARIOS]
    bad += [s for s in _csv(args.servers) if s not in servers]
    if bad:
        print(f"unknown scenario/server: {', '.join(bad)} (see --list)", file=sys.stderr)
        return 2
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            print(f"{tool} not found: run bench/install.sh", file=sys.stderr)
            return 2
    scenarios = [SCENARIOS[s] for s in _csv(args.scenarios)]
    names = _csv(args.servers)

    workroot = Path(tempfile.mkdtemp(prefix="ocsi-bench-"))
    # nginx/ocsigen may drop privileges when started as root: keep it readable.
    workroot.chmod(0o755)
    docroot = workroot / "www"
    make_docroot(docroot)
    ctx = Context(docroot=docroot, args=args)
    results: list[Measurement] = []
    stack = contextlib.ExitStack()
    try:
        try:
            stack.enter_context(proxy_backend(ctx, workroot, any(is_proxy(sc) for sc in scenarios)))
        except ServerStartError as e:
            print(f"proxy backend did not start: {e}", file=sys.stderr)
        for sc in scenarios:
            best: dict[str, Measurement] = {}
            # rounds go through every server in turn, so a noisy moment hits them alike; each
            # cell keeps its best run (noise only ever slows a run down)
            for _ in range(args.rounds):
                for name in names:
                    if name in best and best[name].status == "skipped":
                        continue
                    print(f"[{sc.name}] {name} ...", end=" ", flush=True, file=sys.stderr)
                    m = measure(servers[name], sc, ctx, workroot)
                    kept = best.get(name)
                    if kept is None or (m.result and (not kept.result or m.result.rps > kept.result.rps)):
                        best[name] = m
                    if m.status == "ok" and m.result:
                        extra = f" ({m.message})" if m.message else ""
                        print(f"{m.result.rps:,.0f} req/s, p99 {m.result.p99_ms:.2f} ms [{m.check}]{extra}",
                              file=sys.stderr)
                    else:
                        print(f"{m.status}: {m.message}", file=sys.stderr)
            results.extend(best[name] for name in names if name in best)
    except KeyboardInterrupt:
        print("\ninterrupted; reporting what was measured", file=sys.stderr)
    finally:
        stack.close()
        if args.keep_tmp:
            print(f"kept {workroot}", file=sys.stderr)
        else:
            shutil.rmtree(workroot, ignore_errors=True)

    print(render_markdown(results, scenarios, names, args.baseline))
    if args.json:
        env = environment(ctx, servers, names)
        data = {
            "environment": env,
            "rounds": args.rounds,
            "scenarios": {sc.name: asdict(sc) for sc in scenarios},
            "results": [asdict(m) for m in results],
        }
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if not any(m.status == "failed" for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
