"""Does ``--workers N`` scale? ocsi with 1 and 2 worker processes against nginx with 1 and 2
worker processes, on the same files, with the same load generator, in one run.

    .venv/bin/python bench/scale.py [--duration 5] [--rounds 3] [--path /small.txt]

One process (or one worker) is pinned to core 0 and wrk to core 1; with 2 workers the servers
may use both cores (``taskset -c 0,1``) and so does wrk (``-t2``, unpinned), for both servers
alike. On a 2-core machine the load generator then competes with the second worker, so the
2-worker figures are a floor for what 2 dedicated cores give; the ratio ocsi/nginx at equal
worker counts is what the table is for. Each cell is the best of ``--rounds`` runs (the
machine is shared: noise only ever slows a run down). Both servers write an access log.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import _stop, free_port, make_docroot, wait_answering  # noqa: E402


def ocsi_argv(d: Path, port: int, workers: int, parser: str) -> list[str]:
    (d / "log").mkdir(exist_ok=True)
    conf = d / f"ocsi-{workers}.xml"
    conf.write_text(f"""<ocsigen><server><port>127.0.0.1:{port}</port><logdir>{d}/log</logdir>
<httpparser>{parser}</httpparser><workers>{workers}</workers>
<extension findlib-package="ocsigenserver.ext.staticmod"/>
<host hostfilter="*"><static dir="{d}/www"/></host></server></ocsigen>""")
    return [sys.executable, "-m", "ocsi", "-s", "-c", str(conf)]


def nginx_argv(d: Path, port: int, workers: int, parser: str) -> list[str]:
    conf = d / f"nginx-{workers}.conf"
    conf.write_text(f"""daemon off; worker_processes {workers}; pid {d}/nginx-{workers}.pid;
error_log {d}/nginx-error.log warn; events {{ worker_connections 4096; }}
http {{ access_log {d}/nginx-access.log; keepalive_requests 1000000; sendfile on;
client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}""")
    return [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(d)]


def measure(argv: list[str], port: int, workers: int, path: str, duration: int) -> float:
    cores = "0" if workers == 1 else "0,1"
    proc = subprocess.Popen(["taskset", "-c", cores, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_answering(proc, f"http://127.0.0.1:{port}{path}", argv[0])
        time.sleep(0.5)  # every worker up
        wrk = ["wrk", "-t1" if workers == 1 else "-t2", "-c64"]
        pin = ["taskset", "-c", "1"] if workers == 1 else []
        url = f"http://127.0.0.1:{port}{path}"
        subprocess.run([*pin, *wrk, "-d1s", url], capture_output=True, timeout=60)
        out = subprocess.run([*pin, *wrk, f"-d{duration}s", url], capture_output=True, text=True,
                             timeout=duration + 60).stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return float(m.group(1)) if m else 0.0
    finally:
        _stop(proc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--path", default="/small.txt")
    p.add_argument("--parser", default="httptools", choices=["h11", "httptools"])
    args = p.parse_args()
    servers = {"ocsi": ocsi_argv, "nginx": nginx_argv}
    best: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="ocsi-bench-scale-") as tmp:
        d = Path(tmp)
        make_docroot(d / "www")
        for _ in range(args.rounds):
            for workers in (1, 2):
                for name, make in servers.items():
                    port = free_port()
                    rps = measure(make(d, port, workers, args.parser), port, workers, args.path,
                                  args.duration)
                    best[name, workers] = max(best.get((name, workers), 0.0), rps)
                    print(f"[{name} x{workers}] {rps:,.0f} req/s", file=sys.stderr)
    print(f"`{args.path}`, 64 connections, best of {args.rounds} × {args.duration} s "
          f"(ocsi with <httpparser>{args.parser}</httpparser>)\n")
    print("| workers | ocsi | nginx | ocsi / nginx |")
    print("|---:|---:|---:|---:|")
    for workers in (1, 2):
        o, n = best["ocsi", workers], best["nginx", workers]
        print(f"| {workers} | {o:,.0f} | {n:,.0f} | {o / n if n else 0:.2f}× |")
    for name in servers:
        one, two = best[name, 1], best[name, 2]
        print(f"\n{name}: 2 workers / 1 = {two / one if one else 0:.2f}×", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
