"""Memory held by idle keep-alive connections: each has had one request answered and waits.

    python bench/idle_memory.py [--connections 2000] [--rounds 3]

Starts ocsi on the static row's bench configuration (bench/configs/ocsi-static.xml), answers a
few hundred requests to warm it, reads its resident memory (``VmRSS`` from ``/proc``), opens
``--connections`` connections that each send one request and read its answer, waits for the
server to settle, and reads the memory again. Prints the difference in all and per connection
(the best of ``--rounds``: a round's figure only grows with what else the allocator did). Stops
by itself; everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from icount import REPO, configure, free_port, load, wait_answering  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def hold(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each with one request answered (a 100-byte file), left open."""
    request = b"GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    socks = []
    deadline = time.monotonic() + 120
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(request)
        got = b""
        while not (got.startswith(b"HTTP/1.1 200") and got.endswith(b"x" * 99 + b"\n")):
            chunk = s.recv(65536)
            if not chunk or time.monotonic() > deadline:
                raise RuntimeError(f"unexpected answer: {got[:60]!r}")
            got += chunk
        socks.append(s)
    return socks


def round_(count: int) -> tuple[int, int]:
    work = Path(tempfile.mkdtemp(prefix="ocsi-idle-"))
    proc = None
    try:
        (work / "www").mkdir()
        (work / "www" / "small.txt").write_bytes(b"x" * 99 + b"\n")
        (work / "log").mkdir()
        port = free_port()
        conf = configure("static", port, work, "httptools")
        text = conf.read_text(encoding="utf-8")  # room for them all (the default is lower)
        conf.write_text(text.replace("<server>", f"<server><maxconnected>{count + 100}"
                                     "</maxconnected>", 1), encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "ocsi", "-c", str(conf)], cwd=str(REPO),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        wait_answering(proc, port, "/small.txt", 200)
        load(port, "/small.txt", 200, 500, 16)
        time.sleep(1.0)
        before = rss_kib(proc.pid)
        socks = hold(port, count)
        time.sleep(2.0)
        after = rss_kib(proc.pid)
        for s in socks:
            s.close()
        return before, after
    finally:
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    best = None
    for _ in range(args.rounds):
        before, after = round_(args.connections)
        grew = after - before
        print(f"RSS {before} KiB -> {after} KiB: +{grew} KiB", flush=True)
        best = grew if best is None else min(best, grew)
    assert best is not None
    print(f"{args.connections} idle keep-alive connections: +{best / 1024:.1f} MiB "
          f"({best * 1024 / args.connections:.0f} bytes each, best of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
