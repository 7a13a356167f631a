"""ocsipersist from a site step: get, set and update per second at 64 connections, on SQLite and
on PostgreSQL, with one server and with two servers sharing the store.

    .venv/bin/python bench/persist.py [--duration 5] [--backends sqlite,pgsql]

Each run makes its own store: a SQLite file, or a throwaway PostgreSQL cluster (initdb/pg_ctl,
as ``postgres`` under root) in a temporary directory, stopped at the end. Servers are pinned
to core 0 and wrk to core 1 (PostgreSQL is not pinned). With two servers, two wrk processes
of 32 connections each run at once and their rates are added. On a two-core machine the two
servers share one core: that row checks that sharing costs nothing, not that it scales.
After the update rows, the counter is checked against the number of successful updates.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "plugins" / "ocsipersist-pgsql" / "tests"))
sys.path.insert(0, str(BENCH))

import postgres  # noqa: E402
from run import _stop, free_port, parse_wrk, wait_answering  # noqa: E402

from ocsi.testing import write_extension  # noqa: E402
from ocsi_ext_ocsipersist.conformance import COUNTER  # noqa: E402

PATHS = {"get": "/get?n", "set": "/put?k=v", "update": "/hit"}


def _store(backend: str, work: Path, cluster: postgres.Cluster | None) -> str:
    if backend == "sqlite":
        return (f'<extension findlib-package="ocsi-ext-ocsipersist-sqlite">'
                f'<database file="{work}/bench.db"/></extension>')
    assert cluster is not None
    return (f'<extension findlib-package="ocsi-ext-ocsipersist-pgsql"><database host="127.0.0.1" '
            f'port="{cluster.port}" user="{postgres.USER}" password="{postgres.PASSWORD}"/>'
            "</extension>")


@contextmanager
def server(store: str, work: Path, name: str) -> Iterator[int]:
    port = free_port()
    run = work / name
    (run / "log").mkdir(parents=True)
    conf = run / "ocsi.xml"
    conf.write_text(f"""<ocsigen><server><port>127.0.0.1:{port}</port>
<logdir>{run}/log</logdir><findlib path="{work}/ext"/>{store}
<extension findlib-package="ocsi-ext-counter"/><host><counter/></host></server></ocsigen>""")
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "ocsi", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=open(run / "stderr", "wb"),  # noqa: SIM115
                            start_new_session=True)
    try:
        try:
            wait_answering(proc, f"http://127.0.0.1:{port}/get?n", "ocsi", timeout=30)
        except RuntimeError:
            raise RuntimeError((run / "stderr").read_text()) from None
        yield port
    finally:
        _stop(proc)  # the process group: the server and anything it started


def wrk(ports: list[int], path: str, duration: int) -> tuple[float, int, int]:
    """Requests/s added over the servers, successful requests, errors."""
    conns = 64 // len(ports)
    procs = [subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
                               "--timeout", "5s", f"http://127.0.0.1:{p}{path}"],
                              stdout=subprocess.PIPE, text=True) for p in ports]
    rate, ok, errors = 0.0, 0, 0
    for proc in procs:
        out, _ = proc.communicate(timeout=duration + 30)
        r = parse_wrk(out)
        rate += r.rps
        errors += r.non_2xx_3xx + sum(r.socket_errors.values())
        ok += r.requests - r.non_2xx_3xx
    return rate, ok, errors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--backends", default="sqlite,pgsql")
    args = p.parse_args()
    rows: list[tuple[str, int, str, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="ocsi-bench-persist-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        write_extension(work / "ext", "ocsi-ext-counter", COUNTER,
                        requires=["ocsi-ext-ocsipersist"])
        for backend in args.backends.split(","):
            cluster = None
            if backend == "pgsql":
                cluster = postgres.Cluster()
                stack.callback(cluster.destroy)
            for count in (1, 2):
                store = _store(backend, work, cluster)
                with ExitStack() as servers:
                    ports = [servers.enter_context(server(store, work, f"{backend}-{count}-{i}"))
                             for i in range(count)]
                    before = json.loads(urllib.request.urlopen(
                        f"http://127.0.0.1:{ports[0]}/get?n", timeout=5).read()) or 0
                    for op, path in PATHS.items():
                        rate, ok, errors = wrk(ports, path, args.duration)
                        rows.append((backend, count, op, rate, errors))
                        print(f"[{backend} x{count}] {op}: {rate:,.0f} req/s, {errors} errors",
                              file=sys.stderr)
                        if op == "update":
                            after = json.loads(urllib.request.urlopen(
                                f"http://127.0.0.1:{ports[-1]}/get?n", timeout=5).read())
                            # requests in flight when wrk stops are applied but not counted
                            lost = max(0, before + ok - after)
                            print(f"[{backend} x{count}] counter {after - before} up, {ok} "
                                  f"updates answered, {lost} lost", file=sys.stderr)
    print("| backend | servers | get req/s | set req/s | update req/s |")
    print("|---|---:|---:|---:|---:|")
    for backend in args.backends.split(","):
        for count in (1, 2):
            rates = {op: rate for b, c, op, rate, _ in rows if b == backend and c == count}
            print(f"| {backend} | {count} | {rates['get']:,.0f} | {rates['set']:,.0f} | "
                  f"{rates['update']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
