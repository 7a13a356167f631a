"""A proxied page with and without ``<cache/>``, on a backend that takes 5 ms per answer.

    .venv/bin/python bench/cache_rows.py [--requests 3000] [--connections 8] [--delay 0.005]

Starts a backend (asyncio, ``--delay`` seconds per answer, 2 KiB pages with
``Cache-Control: max-age=600``) and ``python -m ocsi`` twice: ``<revproxy>`` alone, then
``<cache/>`` in front of it (files under a temporary ``<datadir>``). Each run sends
``--requests`` keep-alive GETs over ``--connections`` connections from threads (every answer
checked) and prints the rate and the server's CPU time per request (user and system, from
``/proc``; independent of the client's speed, unlike the rate on a shared machine). Bounded:
a few seconds per row.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PAGE = b"x" * 2048


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend(port: int, delay: float, ready: threading.Event) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                             b"cache-control: max-age=600\r\ncontent-length: %d\r\n\r\n"
                             % len(PAGE) + PAGE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_row(name: str, cached: bool, backend_port: int, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cache = '<cache/>' if cached else ""
        conf = Path(tmp) / "ocsi.conf"
        conf.write_text(f"""<ocsigen><server><port>127.0.0.1:{port}</port>
<logdir>{tmp}/log</logdir><datadir>{tmp}/data</datadir>
<extension findlib-package="ocsi-ext-cache"/><extension findlib-package="ocsi-ext-revproxy"/>
<host>{cache}<revproxy suburl="(.*)" dest="http://127.0.0.1:{backend_port}/\\1"/></host>
</server></ocsigen>""")
        os.makedirs(f"{tmp}/log")
        proc = subprocess.Popen([sys.executable, "-m", "ocsi", "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            per = args.requests // args.connections

            def client(n: int) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                for _ in range(n):
                    conn.request("GET", "/page")
                    r = conn.getresponse()
                    assert r.status == 200 and r.read() == PAGE
                conn.close()

            client(50)  # warm up (and fill the cache)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            with ThreadPoolExecutor(args.connections) as pool:
                list(pool.map(client, [per] * args.connections))
            elapsed, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
            n = per * args.connections
            print(f"| {name} | {n / elapsed:,.0f} | {cpu / n * 1e6:,.0f} |")
        finally:
            proc.terminate()
            proc.wait(15)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--delay", type=float, default=0.005)
    args = p.parse_args()
    port = free_port()
    ready = threading.Event()
    threading.Thread(target=backend, args=(port, args.delay, ready), daemon=True).start()
    ready.wait(10)
    print(f"backend: {args.delay * 1000:g} ms per answer; {args.requests} requests over "
          f"{args.connections} connections")
    print("| row | requests/s | server CPU µs/request |\n|---|---|---|")
    run_row("revproxy", False, port, args)
    run_row("cache + revproxy (hits)", True, port, args)


if __name__ == "__main__":
    main()
