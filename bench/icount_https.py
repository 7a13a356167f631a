"""Instructions per request over TLS: HTTP/2 and HTTP/1.1, ocsi under callgrind, repeatable.

    python bench/icount_https.py [--rows h2,h1] [--requests 2000]

The rows of ``bench/https_rows.py`` (a 100-byte static file; HTTP/2 with h2load's 4 connections
of 16 streams, HTTP/1.1 with ``--h1`` and 16 connections) with ocsi under
``valgrind --tool=callgrind``: after a warm-up, the counters are zeroed and dumped around a run
of 500 requests and around one of ``500 + --requests``; the difference, divided by
``--requests``, is what a request costs, the TLS handshakes of each run's new connections
cancelling out. Kernel time is not counted (HTTP/1.1 spends more of it: a read and a write per
request, where HTTP/2 batches streams); ``bench/https_rows.py --cpu`` counts it. Takes about a
minute. Needs ``h2load`` and ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from https_rows import ocsi_conf, tls_docroot  # noqa: E402
from icount import total_ir  # noqa: E402
from run import free_port, wait_answering  # noqa: E402

LOAD = {"h2": ["-c", "4", "-m", "16"], "h1": ["--h1", "-c", "16", "-m", "1"]}
BASE = 500


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="h2,h1")
    p.add_argument("--requests", type=int, default=2_000)
    args = p.parse_args()
    for tool in ("h2load", "valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="ocsi-icount-https-") as tmp:
        d = Path(tmp)
        tls_docroot(d)
        port = free_port()
        out = d / "cg.out"
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                 "--dump-line=no", *ocsi_conf(d, port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            url = f"https://127.0.0.1:{port}/f"
            wait_answering(proc, url, sys.executable)
            time.sleep(3)  # past staticmod's "racy" delay: the file is then kept in memory
            for row in args.rows.split(","):
                def h2load(n: int, row: str = row) -> None:
                    res = subprocess.run(["h2load", "-n", str(n), *LOAD[row], url],
                                         capture_output=True, text=True, timeout=600)
                    if f"{n} succeeded" not in res.stdout:
                        raise RuntimeError(f"h2load: {res.stdout[-500:]}")
                h2load(BASE)  # warm-up
                counts = []
                for n in (BASE, BASE + args.requests):
                    subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                                   capture_output=True, timeout=120)
                    h2load(n)
                    subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                                   capture_output=True, timeout=120)
                    dumps = sorted(d.glob("cg.out.*"), key=lambda f: f.stat().st_mtime)
                    counts.append(total_ir(dumps[-1]))
                per = (counts[1] - counts[0]) / args.requests
                print(f"{row}: {per:,.0f} instructions per request", flush=True)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
