"""Instructions per request: ocsi (or a peer: rows ``uvicorn``, ``granian``) under callgrind, a fixed number of requests, repeatable.

    python bench/icount.py [--rows static,notfound,asgi] [--requests 2000] [--connections 16]
                           [--parser httptools|h11] [--loop uvloop|asyncio]
    python bench/icount.py --py-spy [--rows static] [--requests 50000] [--top 30]
    python bench/icount.py --cpu [--rows static] [--requests 20000] [--rounds 5]

Wall-clock rates on a shared machine move with the neighbours; instruction counts do not. Each
row starts ``ocsi`` under ``valgrind --tool=callgrind`` with the bench configuration of that row
(bench/configs), warms it with a few hundred requests, zeroes the counters
(``callgrind_control -z``), sends ``--requests`` keep-alive requests over ``--connections``
connections (a plain client outside valgrind, every answer checked), dumps the counters and
prints the instructions per request, kernel excluded. Takes about half a minute per row; where the
instructions go is for a sampling profiler to say, as callgrind sees the interpreter:
``--py-spy`` runs the same rows under ``py-spy record`` (no valgrind) and prints the Python
functions with the most samples of their own and, for the connection layer's entry points, with
their callees (inclusive). ``--cpu`` runs the server natively and prints the CPU time it spent
per request (user and system, from ``/proc``, the best of ``--rounds``): system calls included,
which instruction counts leave out, and still independent of how fast the client is.

Rows: ``static`` (a 100-byte file), ``notfound`` (a 404), ``asgi`` (a plain ASGI application),
``mem``, and ``observed`` (the static row with one extension implementing
``ocsi_request_finished``: what the per-request hook costs).
"""

from __future__ import annotations

import argparse
import os
import signal
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ROWS = {
    # row: (configuration template, path, expected status)
    "static": ("ocsi-static.xml", "/small.txt", 200),
    # the same with <metrics/> loaded and a <site> for it before the files
    "static-metrics": ("ocsi-static-metrics.xml", "/small.txt", 200),
    "notfound": ("ocsi-static.xml", "/does-not-exist.txt", 404),
    "asgi": ("ocsi-app.xml", "/", 200),
    "mem": ("ocsi-tiny.xml", "/", 200),
    # forwarded by revproxy to an nginx backend this script starts (outside valgrind)
    "proxy": ("ocsi-proxy.xml", "/small.txt", 200),
    # static with one ocsi_request_finished implementation (the per-request hook's cost)
    "observed": ("ocsi-observed.xml", "/small.txt", 200),
}
#: Peers measured the same way on the asgi row's application (``bench/apps.py``'s ``plain``):
#: row -> command line after the interpreter (``@PORT@`` replaced), run in ``bench/``.
PEERS = {
    "uvicorn": ["-m", "uvicorn", "apps:plain", "--port", "@PORT@", "--no-access-log",
                "--loop", "uvloop", "--http", "httptools", "--lifespan", "off"],
    "granian": ["-m", "granian", "--interface", "asgi", "--port", "@PORT@", "--workers", "1",
                "--no-ws", "apps:plain"],
}
WARMUP = 300
#: The proxy row's backend port (set by :func:`nginx_backend`).
BACKEND_PORT = 0


def nginx_backend(work: Path) -> subprocess.Popen[bytes]:
    """bench/configs/nginx-backend.conf on ``work/www``, for the proxy row."""
    global BACKEND_PORT
    BACKEND_PORT = free_port()
    text = (BENCH / "configs" / "nginx-backend.conf").read_text(encoding="utf-8")
    for key, value in {"PORT": str(BACKEND_PORT), "DOCROOT": str(work / "www"),
                       "RUNDIR": str(work)}.items():
        text = text.replace(f"@{key}@", value)
    conf = work / "nginx-backend.conf"
    conf.write_text(text, encoding="utf-8")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_answering(proc, BACKEND_PORT, "/small.txt", 200)
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(row: str, port: int, work: Path, parser: str) -> Path:
    template, _, _ = ROWS[row]
    text = (BENCH / "configs" / template).read_text(encoding="utf-8")
    values = {"PORT": str(port), "DOCROOT": str(work / "www"), "RUNDIR": str(work),
              "BENCHDIR": str(BENCH), "ELEMENT": "asgi", "APP": "apps:plain",
              "TINY": '<tiny size="100"/>', "BACKEND": f"http://127.0.0.1:{BACKEND_PORT}"}
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    text = text.replace("<server>", f"<server><httpparser>{parser}</httpparser>", 1)
    conf = work / "ocsi.xml"
    conf.write_text(text, encoding="utf-8")
    return conf


def _answer_end(buf: bytes) -> int:
    """The length of the first complete answer in ``buf`` (Content-Length framing), or 0."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return 0
    m = re.search(rb"\r\ncontent-length: *(\d+)", buf[:end], re.IGNORECASE)
    total = end + 4 + (int(m.group(1)) if m else 0)
    return total if len(buf) >= total else 0


def load(port: int, path: str, status: int, count: int, connections: int,
         timeout: float = 600.0) -> None:
    """Send ``count`` GETs over ``connections`` keep-alive connections; check each answer."""
    import selectors

    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: icount\r\n\r\n".encode()
    expect = f"HTTP/1.1 {status} ".encode()
    sel = selectors.DefaultSelector()
    socks = []
    sent = done = 0
    for _ in range(min(connections, count)):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request)
        sent += 1
        sel.register(s, selectors.EVENT_READ, bytearray())
        socks.append(s)
    deadline = time.monotonic() + timeout
    try:
        while done < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {count} answers in {timeout:.0f}s")
            for key, _ in sel.select(5.0):
                s, buf = key.fileobj, key.data
                chunk = s.recv(65536)  # type: ignore[union-attr]
                if not chunk:
                    raise RuntimeError("the server closed a connection")
                buf += chunk
                while (n := _answer_end(bytes(buf))):
                    if not buf.startswith(expect):
                        raise RuntimeError(f"unexpected answer: {bytes(buf[:60])!r}")
                    del buf[:n]
                    done += 1
                    if sent < count:
                        s.sendall(request)  # type: ignore[union-attr]
                        sent += 1
    finally:
        for s in socks:
            s.close()
        sel.close()


def wait_answering(proc: subprocess.Popen[bytes], port: int, path: str, status: int,
                   timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            load(port, path, status, 1, 1, timeout=60)
            return
        except (OSError, RuntimeError):  # not listening yet, or still starting
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.5)


def total_ir(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def _py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else "py-spy"


def _top(raw: Path, top: int) -> str:
    """Self and inclusive shares of each function in py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [re.sub(r" \((?:[^()]*/)?([^/()]+):\d+\)$", r" (\1)", f)
                  for f in stack.split(";")]
        if any("importlib" in f or f.startswith("start (") for f in frames):
            continue  # the server starting
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count
    rows = [f"{total} busy samples", "  self%  incl%  function"]
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        rows.append(f"{100 * n / total:6.1f} {100 * incl[name] / total:6.1f}  {name}")
    return "\n".join(rows)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _cpu_per_request(pid: int, port: int, path: str, status: int,
                     args: argparse.Namespace) -> float:
    before = _cpu_seconds(pid)
    load(port, path, status, args.requests, args.connections)
    return (_cpu_seconds(pid) - before) / args.requests


def measure(row: str, args: argparse.Namespace) -> int:
    _, path, status = ROWS.get(row, ROWS["asgi"])
    work = Path(tempfile.mkdtemp(prefix="ocsi-icount-"))
    try:
        (work / "www").mkdir()
        (work / "www" / "small.txt").write_bytes(b"x" * 99 + b"\n")
        (work / "log").mkdir()
        port = free_port()
        backend = nginx_backend(work) if row == "proxy" else None
        env = dict(os.environ, OCSI_LOOP=args.loop)
        if row in PEERS:
            command = [a.replace("@PORT@", str(port)) for a in PEERS[row]]
            cwd = str(BENCH)
        else:
            command = ["-m", "ocsi", "-c", str(configure(row, port, work, args.parser))]
            cwd = str(REPO)
        out = work / "cg.out"
        runner = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no"]
        if args.cpu:
            runner = []
        elif args.py_spy:
            runner = [_py_spy(), "record", "--format", "raw", "-r", "500", "-o", str(out), "--"]
        proc = subprocess.Popen(
            [*runner, sys.executable, *command],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            wait_answering(proc, port, path, status)
            load(port, path, status, WARMUP, args.connections)
            if args.cpu:
                best = min(_cpu_per_request(proc.pid, port, path, status, args)
                           for _ in range(args.rounds))
                print(f"{row}: {best * 1e6:.1f} µs of CPU per request (best of {args.rounds})",
                      flush=True)
                return 0
            if args.py_spy:
                load(port, path, status, args.requests, args.connections)
                proc.send_signal(signal.SIGINT)  # py-spy writes its file and stops the server
                proc.wait(60)
                print(_top(out, args.top))
                return 0
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                           capture_output=True, timeout=120)
            load(port, path, status, args.requests, args.connections)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                           capture_output=True, timeout=120)
            dumps = sorted(work.glob("cg.out.*"), key=lambda p: p.stat().st_mtime)
            ir = total_ir(dumps[-1])
            if os.environ.get("ICOUNT_KEEP"):
                shutil.copy(dumps[-1], os.environ["ICOUNT_KEEP"])
            return ir // args.requests
        finally:
            if backend is not None:
                backend.terminate()
                backend.wait(30)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)  # the group: py-spy's server too
                    proc.wait(30)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default="static,notfound,asgi")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--parser", default="httptools", choices=["httptools", "h11"])
    p.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    p.add_argument("--py-spy", action="store_true", help="sample with py-spy instead")
    p.add_argument("--cpu", action="store_true",
                   help="CPU time per request of the server run natively instead")
    p.add_argument("--rounds", type=int, default=5, help="--cpu: runs, the best is kept")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args()
    tool = _py_spy() if args.py_spy else sys.executable if args.cpu else "valgrind"
    if shutil.which(tool) is None:
        print(f"{tool} is not installed", file=sys.stderr)
        return 1
    for row in args.rows.split(","):
        ir = measure(row, args)
        if not args.py_spy and not args.cpu:
            print(f"{row}: {ir:,} instructions per request", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
