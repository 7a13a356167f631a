"""Where the time goes: ocsi under wrk load, profiled with cProfile.

    python bench/profile_hotpath.py [--path /small.txt] [--connections 64] [--seconds 5] [--top 30]
                                    [--parser h11|httptools]

Serves a temporary directory (100-byte ``small.txt``) with staticmod on 127.0.0.1, runs wrk on
CPU 1 against ``--path`` while the server runs on CPU 0 under cProfile, then prints the
functions with the most time of their own. cProfile slows Python down by roughly half, so read
the shares, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", default="/small.txt")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--sort", default="tottime")
    p.add_argument("--parser", default="h11", choices=["h11", "httptools"],
                   help="<httpparser>: h11 (the default) or httptools")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (bench/install.sh)", file=sys.stderr)
        return 1
    from ocsi import eventloop
    from ocsi.server import Server

    tmp = Path(tempfile.mkdtemp(prefix="ocsi-profile-"))
    (tmp / "www").mkdir()
    (tmp / "www" / "small.txt").write_bytes(b"x" * 99 + b"\n")
    (tmp / "log").mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp / "ocsi.conf"
    conf.write_text(f"""<ocsigen><server><httpparser>{args.parser}</httpparser>
      <port>127.0.0.1:{port}</port><logdir>{tmp}/log</logdir>
      <extension findlib-package="ocsigenserver.ext.staticmod"/>
      <host hostfilter="*"><static dir="{tmp}/www"/></host></server></ocsigen>""")
    os.sched_setaffinity(0, {0})
    server = Server(str(conf), silent=True, install_signals=False)
    profiler = cProfile.Profile()

    async def run() -> None:
        await server.start()
        proc = await asyncio.create_subprocess_exec(
            "taskset", "-c", "1", "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s",
            f"http://127.0.0.1:{port}{args.path}", stdout=subprocess.PIPE)
        profiler.enable()
        out, _ = await asyncio.wait_for(proc.communicate(), args.seconds + 30)
        profiler.disable()
        print(out.decode())
        await server.shutdown(2)

    eventloop.run(run())
    stats = pstats.Stats(profiler)
    stats.sort_stats(args.sort).print_stats(args.top)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
