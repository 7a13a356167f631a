"""HTTPS rows: a 100-byte static file over HTTP/2 (h2load, 4 connections of 16 concurrent
streams), over HTTP/1.1 + TLS (h2load --h1, 64 connections) and a new TLS connection per
request (handshakes per second), under ocsi and nginx in one run.

    .venv/bin/python bench/https_rows.py [--requests 40000] [--cpu]

Each server is one process pinned to core 0 with its access log on, allowed 4,096 connections
(nginx's worker_connections; ocsi's <maxconnected>, 350 by default as in Ocsigen); h2load runs on
core 1.
``--cpu`` prints, instead of the rates, the CPU time each server spent per request (user and
system, from ``/proc``, best of three runs of each row): a figure that holds on a loaded machine
where rates do not.
The certificate (ECDSA P-256) and the document root are made in a temporary directory.
Needs ``h2load`` (Debian's nghttp2-client) and ``nginx``; a missing one is skipped.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import _stop, free_port, wait_answering  # noqa: E402

from ocsi.certificates import self_signed  # noqa: E402

#: row -> h2load's arguments; ``{n}`` is --requests. The last row opens a connection per
#: request (a full TLS 1.3 handshake each, no resumption): handshakes per second.
ROWS = {
    "h2 (4 conns x 16 streams)": ["-n", "{n}", "-c", "4", "-m", "16"],
    "h1.1+TLS (64 conns)": ["-n", "{n}", "--h1", "-c", "64", "-m", "1"],
    "TLS handshakes (2,000 conns, 1 request each)": ["-n", "2000", "--h1", "-c", "2000"],
}


def tls_docroot(d: Path) -> None:
    """What every HTTPS row serves, in ``d``: a self-signed ECDSA certificate for localhost
    (``c.pem``, ``k.pem``) and ``www/f``, a 100-byte file."""
    cert, key = self_signed(("localhost", "127.0.0.1"))
    (d / "c.pem").write_bytes(cert)
    (d / "k.pem").write_bytes(key)
    (d / "www").mkdir()
    (d / "www" / "f").write_bytes(b"x" * 99 + b"\n")


def ocsi_conf(d: Path, port: int) -> list[str]:
    (d / "log").mkdir()
    conf = d / "ocsi.xml"
    conf.write_text(f"""<ocsigen><server><port protocol="HTTPS">127.0.0.1:{port}</port>
<logdir>{d}/log</logdir><maxconnected>4096</maxconnected><ssl><certificate>{d}/c.pem</certificate><privatekey>{d}/k.pem</privatekey></ssl>
<extension findlib-package="ocsi-ext-staticmod"/><host><static dir="{d}/www"/></host>
</server></ocsigen>""")
    return [sys.executable, "-m", "ocsi", "-c", str(conf)]


def nginx_conf(d: Path, port: int) -> list[str]:
    conf = d / "nginx.conf"
    conf.write_text(f"""daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn; events {{ worker_connections 4096; }}
http {{ access_log {d}/nginx-access.log; keepalive_requests 1000000; client_body_temp_path {d}/cb; proxy_temp_path {d}/px;
fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {d}/c.pem;
ssl_certificate_key {d}/k.pem; root {d}/www; }} }}""")
    return [shutil.which("nginx") or "nginx", "-c", str(conf), "-p", str(d)]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(argv: list[str], port: int, requests: int, cpu: bool = False) -> dict[str, float]:
    proc = subprocess.Popen(["taskset", "-c", "0", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    out: dict[str, float] = {}
    try:
        wait_answering(proc, f"https://127.0.0.1:{port}/f", argv[0])
        for row, extra in ROWS.items():
            args = [a.replace("{n}", str(requests)) for a in extra]
            total = int(args[args.index("-n") + 1])
            best = None
            for _ in range(3 if cpu else 1):
                before = _cpu_seconds(proc.pid)
                res = subprocess.run(["taskset", "-c", "1", "h2load", *args,
                                      f"https://127.0.0.1:{port}/f"], capture_output=True,
                                     text=True, timeout=120)
                spent = (_cpu_seconds(proc.pid) - before) / total * 1e6
                m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", res.stdout)
                ok = re.search(r"(\d+) succeeded", res.stdout)
                value = (spent if cpu else float(m.group(1))) if m and ok \
                    and int(ok.group(1)) == total else 0.0
                best = value if best is None or (value and value < best) else best
            out[row] = best or 0.0
    finally:
        _stop(proc)  # the process group: the server and anything it started
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=40_000)
    p.add_argument("--cpu", action="store_true", help="µs of server CPU per request, not rates")
    args = p.parse_args()
    if shutil.which("h2load") is None:
        print("h2load is not installed (apt-get install nghttp2-client)", file=sys.stderr)
        return 1
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ocsi-bench-h2-") as tmp:
        d = Path(tmp)
        tls_docroot(d)
        servers = {"ocsi": ocsi_conf}
        if shutil.which("nginx"):
            servers["nginx"] = nginx_conf
        for name, make in servers.items():
            port = free_port()
            results[name] = measure(make(d, port), port, args.requests, args.cpu)
            print(f"[{name}] {results[name]}", file=sys.stderr)
    names = list(results)
    print("| row | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in ROWS:
        print(f"| {row} | " + " | ".join(f"{results[n][row]:,.{1 if args.cpu else 0}f}"
                                         for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
