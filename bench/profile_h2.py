"""Where an HTTP/2 stream's time goes: ocsi under h2load, by cProfile or by lines of Python.

    python bench/profile_h2.py [--mode lines|cprofile] [--requests 10000] [--top 40] [--h1]

Serves a 100-byte file over TLS with staticmod, in this process on CPU 0, and runs h2load on
CPU 1 (4 connections of 16 streams; ``--h1``: HTTP/1.1, 64 connections), after 2,000 requests
of warm-up. ``--mode lines`` counts the lines of Python executed (``sys.settrace``) and prints
them per request, by file and by function: a figure that does not move with the machine's load,
unlike a rate; C code (the event loop, TLS, jh2's HPACK) is not counted. ``--mode cprofile``
prints the functions with the most time of their own; the profiler slows Python down by about
half, so read the shares, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from https_rows import tls_docroot  # noqa: E402


def _short(path: str) -> str:
    return path.split("site-packages/")[-1].split("/core/")[-1].split("/plugins/")[-1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", default="lines", choices=["lines", "cprofile"])
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--h1", action="store_true", help="HTTP/1.1 over TLS instead")
    args = p.parse_args()
    if shutil.which("h2load") is None:
        print("h2load is not installed (apt-get install nghttp2-client)", file=sys.stderr)
        return 1
    from ocsi import eventloop
    from ocsi.server import Server

    tmp = Path(tempfile.mkdtemp(prefix="ocsi-profile-h2-"))
    tls_docroot(tmp)
    (tmp / "log").mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp / "ocsi.xml"
    conf.write_text(f"""<ocsigen><server><port protocol="HTTPS">127.0.0.1:{port}</port>
<logdir>{tmp}/log</logdir><maxconnected>4096</maxconnected><ssl><certificate>{tmp}/c.pem</certificate><privatekey>{tmp}/k.pem</privatekey></ssl>
<extension findlib-package="ocsi-ext-staticmod"/><host><static dir="{tmp}/www"/></host>
</server></ocsigen>""")
    os.sched_setaffinity(0, {0})
    server = Server(str(conf), silent=True, install_signals=False)
    profiler = cProfile.Profile()
    counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            counts[(frame.f_code.co_filename, frame.f_code.co_name)] += 1
        return tracer

    load = ["--h1", "-c", "64", "-m", "1"] if args.h1 else ["-c", "4", "-m", "16"]

    async def h2load(n: int) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            "taskset", "-c", "1", "h2load", "-n", str(n), *load, f"https://127.0.0.1:{port}/f",
            stdout=subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        return out

    async def run() -> None:
        await server.start()
        await h2load(2_000)
        if args.mode == "cprofile":
            profiler.enable()
        else:
            sys.settrace(tracer)
        try:
            out = await h2load(args.requests)
        finally:
            sys.settrace(None)
            profiler.disable()
        print("\n".join(line for line in out.decode().splitlines() if "succeeded" in line))
        await server.shutdown(2)

    try:
        eventloop.run(run())
        if args.mode == "cprofile":
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
            return 0
        n = args.requests
        print(f"lines of Python per request: {sum(counts.values()) / n:.1f}")
        by_file: collections.Counter[str] = collections.Counter()
        for (path, _), c in counts.items():
            by_file[_short(path)] += c
        for path, c in by_file.most_common(args.top):
            print(f"{c / n:8.1f}  {path}")
        print()
        for (path, name), c in counts.most_common(args.top):
            print(f"{c / n:8.1f}  {name}  {_short(path)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
