"""A 100-byte file over HTTP/3: ocsi against Caddy's HTTP/3 and ocsi's own HTTP/2, one run.

No HTTP/3 load generator is packaged here (Debian's h2load and curl are built without it), so
the client is Python: aioquic for HTTP/3 and h2 over ``ssl`` for HTTP/2, the same loop for
every server (``CONNS`` connections, ``STREAMS`` requests in flight on each, for ``--duration``
seconds), pinned to another core than the server (``taskset``). The client costs about as
much as the server, so the figures are indicative: compare the rows of one run, not runs of
different days. The server's CPU time per request (from /proc) is the steadier figure: it does
not depend on how fast the client is. Bounded: every cell stops after its duration, every
process is killed.

    .venv/bin/python bench/http3.py                      # 5 s per cell
    .venv/bin/python bench/http3.py --duration 3 --rounds 3 --json /tmp/h3.json

Caddy is Debian's ``caddy`` (``apt-get install caddy``); its row is skipped without it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONNS = 2
STREAMS = 8
SMALL = b"x" * 99 + b"\n"


def free_port() -> int:
    """A port free in TCP and UDP at once (HTTP/3 takes the same number in both)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port")


# -- clients (run in a subprocess pinned to the client core) --------------------------------------
async def _h3_load(port: int, duration: float) -> tuple[int, int]:
    from aioquic.asyncio.client import connect
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration

    class Client(QuicConnectionProtocol):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, **kw)  # type: ignore[arg-type]
            self.h3 = H3Connection(self._quic)
            self.waiting: dict[int, tuple[asyncio.Future[int], list[int]]] = {}

        def quic_event_received(self, event: object) -> None:
            for e in self.h3.handle_event(event):  # type: ignore[arg-type]
                if isinstance(e, (HeadersReceived, DataReceived)) and e.stream_id in self.waiting:
                    fut, status = self.waiting[e.stream_id]
                    if isinstance(e, HeadersReceived):
                        status[0] = int(dict(e.headers)[b":status"])
                    if e.stream_ended:
                        del self.waiting[e.stream_id]
                        fut.set_result(status[0])

        async def get(self, path: str) -> int:
            sid = self._quic.get_next_available_stream_id()
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self.waiting[sid] = (fut, [0])
            self.h3.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"),
                                       (b":authority", f"localhost:{port}".encode()),
                                       (b":path", path.encode())], end_stream=True)
            self.transmit()
            return await fut

    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost",
                               verify_mode=ssl.CERT_NONE)
    done = errors = 0
    end = time.monotonic() + duration

    async def one_connection() -> None:
        nonlocal done, errors
        async with connect("127.0.0.1", port, configuration=config,
                           create_protocol=Client) as proto:
            async def worker() -> None:
                nonlocal done, errors
                while time.monotonic() < end:
                    status = await asyncio.wait_for(proto.get("/small.txt"), 10)  # type: ignore[attr-defined]
                    if status == 200:
                        done += 1
                    else:
                        errors += 1
            await asyncio.gather(*(worker() for _ in range(STREAMS)))

    await asyncio.gather(*(one_connection() for _ in range(CONNS)))
    return done, errors


async def _h2_load(port: int, duration: float) -> tuple[int, int]:
    import h2.config
    import h2.connection
    import h2.events

    done = errors = 0
    end = time.monotonic() + duration

    async def one_connection() -> None:
        nonlocal done, errors
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                       server_hostname="localhost")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        waiting: dict[int, tuple[asyncio.Future[int], list[int]]] = {}

        async def pump() -> None:
            while data := await reader.read(65536):
                for e in conn.receive_data(data):
                    if isinstance(e, h2.events.ResponseReceived):
                        waiting[e.stream_id][1][0] = int(dict(e.headers)[b":status"])
                    elif isinstance(e, h2.events.DataReceived):
                        conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    elif isinstance(e, h2.events.StreamEnded) and e.stream_id in waiting:
                        fut, status = waiting.pop(e.stream_id)
                        fut.set_result(status[0])
                writer.write(conn.data_to_send())

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < end:
                sid = conn.get_next_available_stream_id()
                fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                waiting[sid] = (fut, [0])
                conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                        (":authority", f"localhost:{port}"),
                                        (":path", "/small.txt")], end_stream=True)
                writer.write(conn.data_to_send())
                if await asyncio.wait_for(fut, 10) == 200:
                    done += 1
                else:
                    errors += 1

        writer.write(conn.data_to_send())
        reading = asyncio.create_task(pump())
        await asyncio.gather(*(worker() for _ in range(STREAMS)))
        reading.cancel()
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(CONNS)))
    return done, errors


def client_main(kind: str, port: int, duration: float) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    load = _h3_load if kind == "h3" else _h2_load
    started = time.monotonic()
    done, errors = asyncio.run(load(port, duration))
    print(json.dumps({"requests": done, "errors": errors,
                      "seconds": time.monotonic() - started}))


# -- servers ---------------------------------------------------------------------------------------
def start_ocsi(d: Path, port: int, www: Path, cert: Path, key: Path) -> subprocess.Popen[bytes]:
    conf = d / "ocsi.conf"
    conf.write_text(
        f'<ocsigen><server><port protocol="HTTPS" http3="true">127.0.0.1:{port}</port>'
        f"<ssl><certificate>{cert}</certificate><privatekey>{key}</privatekey></ssl>"
        f"<logdir>{d}/log</logdir>"
        '<extension findlib-package="ocsi-ext-staticmod"/>'
        f'<host><static dir="{www}"/></host></server></ocsigen>')
    (d / "log").mkdir()
    return subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "ocsi", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"),
                            start_new_session=True)


def start_caddy(d: Path, port: int, www: Path, cert: Path, key: Path) -> subprocess.Popen[bytes]:
    (d / "Caddyfile").write_text(
        "{\n  admin off\n  auto_https off\n  servers {\n    protocols h1 h2 h3\n  }\n}\n"
        f"https://localhost:{port}, https://127.0.0.1:{port} {{\n"
        f"  bind 127.0.0.1\n  tls {cert} {key}\n  root * {www}\n  file_server\n}}\n")
    env = {**os.environ, "XDG_DATA_HOME": str(d / "data"), "XDG_CONFIG_HOME": str(d / "config"),
           "HOME": str(d)}
    return subprocess.Popen(["taskset", "-c", "0", "caddy", "run", "--config",
                             str(d / "Caddyfile"), "--adapter", "caddyfile"],
                            stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"), env=env,
                            start_new_session=True)


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not listen within 20 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the server (``taskset`` execs it: the same pid), threads
    included: what one request costs the server, whatever the client manages."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(kind: str, port: int, duration: float) -> dict[str, float]:
    out = subprocess.run(["taskset", "-c", "1", sys.executable, __file__, "--client", kind,
                          "--port", str(port), "--duration", str(duration)],
                         capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "client failed")
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each cell this many times, keep the cheapest")
    parser.add_argument("--json")
    parser.add_argument("--client", choices=("h3", "h2"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.port, args.duration)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
    from ocsi.certificates import self_signed

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="ocsi-h3-bench-") as tmp:
        root = Path(tmp)
        www = root / "www"
        www.mkdir()
        (www / "small.txt").write_bytes(SMALL)
        c, k = self_signed(["localhost", "127.0.0.1"])
        cert, key = root / "cert.pem", root / "key.pem"
        cert.write_bytes(c)
        key.write_bytes(k)
        cells = [("ocsi", "h3", start_ocsi), ("caddy", "h3", start_caddy),
                 ("ocsi", "h2", start_ocsi)]
        for name, kind, start in cells:
            if name == "caddy" and shutil.which("caddy") is None:
                rows.append({"server": name, "protocol": kind, "skipped": "caddy not installed"})
                continue
            d = root / f"{name}-{kind}"
            d.mkdir()
            port = free_port()
            proc = start(d, port, www, cert, key)
            try:
                wait_port(port, proc)
                run_client(kind, port, 1.0)  # warm-up (and a check that it answers)
                best: dict[str, object] = {}
                for _ in range(args.rounds):  # noise only slows a run down: the best is kept
                    cpu = cpu_seconds(proc.pid)
                    r = run_client(kind, port, args.duration)
                    cpu = cpu_seconds(proc.pid) - cpu
                    row = {"server": name, "protocol": kind,
                           "req_per_s": round(r["requests"] / r["seconds"]),
                           "server_cpu_us_per_req": round(cpu / max(1, r["requests"]) * 1e6),
                           "requests": r["requests"], "errors": r["errors"]}
                    if not best or row["server_cpu_us_per_req"] < best["server_cpu_us_per_req"]:  # type: ignore[operator]
                        best = row
                rows.append(best)
            except Exception as exc:  # noqa: BLE001 - the row says why
                rows.append({"server": name, "protocol": kind, "failed": str(exc)})
            finally:
                stop(proc)
    print(f"100-byte file, {CONNS} connections x {STREAMS} streams, {args.duration:g} s, "
          "Python clients (indicative)\n")
    print("| server | protocol | req/s | server CPU µs/request | errors |\n|---|---|---:|---:|---:|")
    for row in rows:
        if "req_per_s" in row:
            print(f"| {row['server']} | {row['protocol']} | {row['req_per_s']} | "
                  f"{row['server_cpu_us_per_req']} | {row['errors']} |")
        else:
            print(f"| {row['server']} | {row['protocol']} | "
                  f"{row.get('skipped') or row.get('failed')} | | |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
