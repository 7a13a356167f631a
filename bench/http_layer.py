"""Benchmark of the HTTP/1.1 connection layer alone (no configuration, no pipeline).

The server answers every request with the same 13-byte body (``hello, world\\n``) through
:class:`ocsi._http.connection.ConnectionManager`; hypercorn serves the equivalent ASGI app
(``bench/hypercorn_app.py``) in the same run as the Python reference. Each server is pinned to
CPU 0 and wrk to CPU 1.

    python bench/http_layer.py run                      # table: ocsi (asyncio, uvloop), hypercorn
    python bench/http_layer.py run -d 10 -c 64,1,256    # longer, other concurrencies
    python bench/http_layer.py run --body file          # the 13 bytes from a file (FileBody)
    python bench/http_layer.py serve --loop uvloop --port 8080
    python bench/http_layer.py profile --loop asyncio   # cProfile of the server under wrk -c64

Run from the repository root with the project's virtualenv (wrk must be on PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BODY = b"hello, world\n"


# -- the server under test ---------------------------------------------------------------------
def serve(loop_name: str, port: int, profile: str | None = None, body: str = "bytes",
          small_file: int | None = None) -> None:
    import tempfile

    sys.path.insert(0, os.path.join(ROOT, "core"))
    from ocsi._http import sending
    from ocsi._http.body import BytesBody, FileBody
    from ocsi._http.connection import ConnectionManager
    from ocsi._http.headers import Headers
    from ocsi._http.limits import Limits
    from ocsi._http.response import Response

    if small_file is not None:
        sending.SMALL_FILE = small_file
    if body == "file":
        fd, path = tempfile.mkstemp(prefix="ocsi-bench-")
        os.write(fd, BODY)
        os.close(fd)

        async def app(request):  # what a static file costs: open, fstat, FileBody
            f = os.open(path, os.O_RDONLY)
            return Response(200, Headers([("content-type", "text/plain")]),
                            FileBody(f, 0, os.fstat(f).st_size))
    else:
        async def app(request):  # what a trivial pipeline step costs at least: build a response
            return Response(200, Headers([("content-type", "text/plain")]), BytesBody(BODY))

    async def main() -> None:
        manager = ConnectionManager(app, Limits(max_connections=10_000))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        server = await loop.create_server(manager.protocol_factory(port, False), sock=sock,
                                          backlog=1024)
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
        await stop
        server.close()
        await manager.shutdown(1.0)

    if loop_name == "uvloop":
        import uvloop

        runner = lambda: uvloop.run(main())  # noqa: E731
    else:
        runner = lambda: asyncio.run(main())  # noqa: E731
    try:
        if profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            try:
                runner()
            finally:
                prof.disable()
                prof.dump_stats(profile)
        else:
            runner()
    finally:
        if body == "file":
            os.unlink(path)


# -- orchestration -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def _start(kind: str, port: int, profile: str | None = None,
           extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    py = sys.executable
    if kind.startswith("ocsi-"):
        cmd = [py, os.path.abspath(__file__), "serve", "--loop", kind[5:], "--port", str(port)]
        cmd += extra or []
        if profile:
            cmd += ["--profile", profile]
    else:
        hypercorn = os.path.join(os.path.dirname(py), "hypercorn")
        cmd = [hypercorn, "--workers", "1", "--bind", f"127.0.0.1:{port}",
               "--log-level", "warning", "bench.hypercorn_app:app"]
        if kind == "hypercorn-uvloop":
            cmd[1:1] = ["-k", "uvloop"]
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"{kind}: {proc.stderr.read().decode() if proc.stderr else ''}")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (hypercorn forks its worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = _stat(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        todo.extend(children.get(p, ()))
    return total / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, conns: int, duration: int, pid: int | None = None) -> tuple[float, int, float]:
    """Run wrk; return (requests/s, errors, server CPU µs per request or nan)."""
    cpu0 = _cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True).stdout
    cpu = _cpu_seconds(pid) - cpu0 if pid else float("nan")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    if m:
        errors += sum(int(x) for x in re.findall(r"\d+", m.group(1)))
    return rps, errors, (cpu / total * 1e6 if total else float("nan"))


def run(kinds: list[str], conns: list[int], duration: int, warmup: int, repeat: int,
        extra: list[str] | None = None) -> None:
    """Each round starts every server once and measures each concurrency; rounds interleave the
    servers so that machine noise hits them alike. The table shows the median of the rounds."""
    import statistics

    if shutil.which("wrk") is None:
        sys.exit("wrk not found (apt-get install -y wrk)")
    rounds: dict[str, dict[int, list[tuple[float, int, float]]]] = {
        k: {c: [] for c in conns} for k in kinds}
    for i in range(repeat):
        for kind in kinds:
            port = _free_port()
            proc = _start(kind, port, extra=extra)
            try:
                if warmup:
                    _wrk(port, max(conns), warmup)
                for c in conns:
                    rounds[kind][c].append(_wrk(port, c, duration, proc.pid))
            finally:
                _stop(proc)
            if repeat > 1:
                print(f"round {i + 1}: {kind}: "
                      + ", ".join(f"-c{c} {rounds[kind][c][-1][0]:,.0f} req/s "
                                  f"{rounds[kind][c][-1][2]:.0f} µs/req" for c in conns),
                      file=sys.stderr)
    results = {k: {c: (statistics.median(r[0] for r in v[c]), sum(r[1] for r in v[c]),
                       statistics.median(r[2] for r in v[c]))
                   for c in conns} for k, v in rounds.items()}
    ref = results.get("hypercorn")
    print(f"\nwrk -t1 -d{duration}s, 13-byte body, server on CPU 0, wrk on CPU 1, "
          f"median of {repeat} round(s) {' '.join(extra or [])}\n")
    head = "| server | " + " | ".join(f"-c{c} req/s | -c{c} CPU µs/req" for c in conns)
    if ref:
        head += " | " + " | ".join(f"-c{c} req/s vs hypercorn" for c in conns)
    print(head + " |")
    print("|---" * (1 + len(conns) * (3 if ref else 2)) + "|")
    for kind, res in results.items():
        row = f"| {kind} | " + " | ".join(
            f"{res[c][0]:,.0f}" + (f" ({res[c][1]} err)" if res[c][1] else "")
            + f" | {res[c][2]:.0f}" for c in conns)
        if ref:
            row += " | " + " | ".join(f"{res[c][0] / ref[c][0]:.2f}×" for c in conns)
        print(row + " |")


def profile(loop_name: str, duration: int, out: str) -> None:
    import pstats

    port = _free_port()
    proc = _start(f"ocsi-{loop_name}", port, profile=out)
    try:
        _wrk(port, 64, duration)
    finally:
        _stop(proc)
    pstats.Stats(out).sort_stats("tottime").print_stats(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--profile")
    s.add_argument("--body", choices=("bytes", "file"), default="bytes")
    s.add_argument("--small-file", type=int)
    r = sub.add_parser("run")
    r.add_argument("-d", "--duration", type=int, default=5)
    r.add_argument("-c", "--connections", default="64,1")
    r.add_argument("-w", "--warmup", type=int, default=1)
    r.add_argument("-r", "--repeat", type=int, default=1)
    r.add_argument("-s", "--servers", default="ocsi-asyncio,ocsi-uvloop,hypercorn,hypercorn-uvloop")
    r.add_argument("--body", choices=("bytes", "file"), default="bytes",
                   help="what ocsi answers with (hypercorn always sends bytes)")
    r.add_argument("--small-file", type=int, help="override ocsi._http.sending.SMALL_FILE")
    p = sub.add_parser("profile")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("-d", "--duration", type=int, default=5)
    p.add_argument("-o", "--out", default="/tmp/ocsi-http-layer.prof")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.loop, args.port, args.profile, args.body, args.small_file)
    elif args.cmd == "run":
        extra = ["--body", args.body]
        if args.small_file is not None:
            extra += ["--small-file", str(args.small_file)]
        run(args.servers.split(","), [int(c) for c in args.connections.split(",")],
            args.duration, args.warmup, args.repeat, extra)
    else:
        profile(args.loop, args.duration, args.out)


if __name__ == "__main__":
    main()
