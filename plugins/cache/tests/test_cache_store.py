"""Where entries live: large bodies streamed to files and back with bounded memory, the
least recently used out first, memory-only without <datadir>, shared by two workers."""

from __future__ import annotations

import hashlib
import http.client
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from origin import DATADIR, EXTS, Origin, proxied, status_of, until

TEXT = {"content-type": "application/octet-stream"}
MiB = 1024 * 1024


def entry_files(tmp: Path) -> list[Path]:
    root = tmp / "data" / "cache"
    return [p for p in root.rglob("*")
            if p.is_file() and not {"tmp", "locks"} & set(p.relative_to(root).parts)]


def total_size(tmp: Path) -> int:
    """The bytes of the entry files (one removed meanwhile by an eviction counts nothing)."""
    total = 0
    for f in entry_files(tmp):
        try:
            total += f.stat().st_size
        except FileNotFoundError:
            pass
    return total


def stream(port: int, path: str) -> tuple[int, int, str, str]:
    """GET ``path`` reading the body in 64 KiB pieces: status, length, SHA-256, Cache-Status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        digest = hashlib.sha256()
        n = 0
        while piece := resp.read(65536):
            digest.update(piece)
            n += len(piece)
        return resp.status, n, digest.hexdigest(), resp.headers.get("cache-status", "")
    finally:
        conn.close()


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_large_body_goes_to_a_file_and_back_with_bounded_memory(ocsi_process: Any,
                                                                 origin: Origin) -> None:
    """1 GiB, chunked from the origin, streamed to the client and into a file as it comes,
    then served from the file: the server's peak memory grows by far less than the body
    (1.5 MiB when measured)."""
    size = 1024 * MiB
    origin.route("/big", headers={**TEXT, "cache-control": "max-age=600"},
                 stream=(size, 256 * 1024))
    origin.route("/small", headers={**TEXT, "cache-control": "max-age=600"}, body=b"s")
    proc = ocsi_process(proxied(origin, 'maxentry="2GiB" size="3GiB"'))
    assert proc.get("/small").status == 200
    before = peak_rss(proc.proc.pid)
    digest = hashlib.sha256()
    for _ in range(size // MiB):
        digest.update(b"x" * MiB)
    expected = digest.hexdigest()
    miss = stream(proc.port, "/big")
    assert miss[:3] == (200, size, expected) and miss[3].endswith("stored")
    # the entry is committed once the body's end has passed (the client may see it first)
    files = until(lambda: [p for p in entry_files(proc.tmp) if p.stat().st_size > size])
    assert len(files) == 1  # the metadata, then the body
    hit = stream(proc.port, "/big")
    assert hit[:3] == (200, size, expected) and "hit" in hit[3]
    assert origin.hits("/big") == 1
    grown = peak_rss(proc.proc.pid) - before
    assert grown < 64 * MiB, f"peak memory grew by {grown // MiB} MiB for a {size // MiB} MiB body"


def test_larger_than_maxentry_passes_through_unstored(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/big", headers={**TEXT, "cache-control": "max-age=600"}, body=b"x" * 300_000)
    origin.route("/chunked", headers={**TEXT, "cache-control": "max-age=600"},
                 stream=(300_000, 4096))
    srv = ocsi_server(proxied(origin, 'maxentry="200KiB"'))
    for _ in range(2):
        assert len(srv.get("/big").body) == 300_000
        assert len(srv.get("/chunked").body) == 300_000
    assert (origin.hits("/big"), origin.hits("/chunked")) == (2, 2)
    assert status_of(srv.get("/big")).endswith("detail=too-large")


def test_small_entries_in_memory_large_ones_in_files(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/s", headers={**TEXT, "cache-control": "max-age=600"}, body=b"s" * 1000)
    origin.route("/l", headers={**TEXT, "cache-control": "max-age=600"}, body=b"l" * 100_000)
    srv = ocsi_server(proxied(origin, 'memoryentry="10KiB"'))
    srv.get("/s")
    srv.get("/l")
    assert len(entry_files(srv.tmp)) == 2  # both in files: the other workers read them
    for _ in range(3):
        assert srv.get("/s").body == b"s" * 1000 and srv.get("/l").body == b"l" * 100_000
    assert (origin.hits("/s"), origin.hits("/l")) == (1, 1)


def test_an_entry_rewritten_by_another_process_is_seen(ocsi_server: Any,
                                                      origin: Origin) -> None:
    """The memory copy of a small entry is used only while its file is unchanged: a purge by
    another worker (here, removing the file) is seen at once."""
    origin.route("/s", headers={**TEXT, "cache-control": "max-age=600"}, body=b"s")
    srv = ocsi_server(proxied(origin))
    srv.get("/s")
    srv.get("/s")
    for f in entry_files(srv.tmp):
        f.unlink()
    assert status_of(srv.get("/s")).startswith("fwd=uri-miss")
    assert origin.hits("/s") == 2


def test_least_recently_used_out_first(ocsi_server: Any, origin: Origin) -> None:
    for i in range(6):
        origin.route(f"/e{i}", headers={**TEXT, "cache-control": "max-age=600"},
                     body=bytes([65 + i]) * 100_000)
    srv = ocsi_server(proxied(origin, 'size="350KiB" memoryentry="1KiB" maxentry="200KiB"'))
    for i in range(6):
        srv.get(f"/e{i}")
        # each write past the bound starts a scan; let it finish before the next write
        until(lambda: total_size(srv.tmp) <= 350 * 1024)
    total = total_size(srv.tmp)
    assert total <= 350 * 1024
    assert status_of(srv.get("/e5")).startswith("hit")
    assert status_of(srv.get("/e0")).startswith("fwd=uri-miss")


def test_memory_only_without_datadir(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/s", headers={**TEXT, "cache-control": "max-age=600"}, body=b"s" * 1000)
    origin.route("/l", headers={**TEXT, "cache-control": "max-age=600"}, body=b"l" * 400_000)
    srv = ocsi_server(proxied(origin, datadir=False))
    for _ in range(3):
        srv.get("/s")
        srv.get("/l")
    # without files, nothing above memoryentry (256 KiB) is kept
    assert (origin.hits("/s"), origin.hits("/l")) == (1, 3)


def test_memory_bound_without_datadir(ocsi_server: Any, origin: Origin) -> None:
    for i in range(4):
        origin.route(f"/e{i}", headers={**TEXT, "cache-control": "max-age=600"},
                     body=b"x" * 40_000)
    srv = ocsi_server(proxied(origin, 'memory="100KiB" memoryentry="50KiB"', datadir=False))
    for i in range(4):
        srv.get(f"/e{i}")
    assert status_of(srv.get("/e3")).startswith("hit")
    assert status_of(srv.get("/e0")).startswith("fwd=uri-miss")


def test_two_workers_share_entries(ocsi_process: Any, origin: Origin) -> None:
    """``--workers 2``: what one worker stored, the other answers from (``X-Served-By`` says
    which worker answered; new connections go to either, as the kernel chooses)."""
    origin.route("/c/shared", headers={**TEXT, "cache-control": "max-age=600"}, body=b"one")
    proc = ocsi_process(DATADIR + EXTS + f'<host><site path="c"><cache/>'
                        f'<revproxy suburl="(.*)" dest="{origin.url}/c/\\1"/></site>'
                        '<served-by/></host>', args=["--workers", "2"])
    workers: set[str] = set()
    with ThreadPoolExecutor(4) as pool:
        def round_() -> bool:
            for r in pool.map(lambda _: proc.get("/c/shared"), range(8)):
                assert r.body == b"one"
                workers.add(r.headers["x-served-by"])
            return len(workers) == 2
        assert until(round_, 60)
    assert origin.hits("/c/shared") == 1


def test_two_workers_coalesce_misses(ocsi_process: Any, origin: Origin) -> None:
    """Concurrent misses on both workers make one request behind: the worker that does not
    hold the key's lock file waits for the other's entry. Each round holds the origin until
    its first request has been waiting a moment; whatever the timing, the origin is asked
    once per round; at least one round must have had a waiter on the other worker."""
    import threading
    import time
    gates: dict[str, threading.Event] = {}

    def slow(method: str, path: str, headers: dict[str, str]) -> Any:
        gates[path].wait(30)
        return 200, {**TEXT, "cache-control": "max-age=600"}, b"slow"
    proc = ocsi_process(DATADIR + EXTS + '<host><site path="c"><cache/>'
                        f'<revproxy suburl="(.*)" dest="{origin.url}/c/\\1"/></site>'
                        '<served-by/></host>', args=["--workers", "2"])
    across = False
    with ThreadPoolExecutor(8) as pool:
        for round_ in range(6):
            path = f"/c/r{round_}"
            gates[path] = threading.Event()
            origin.route(path, handler=slow)
            futures = [pool.submit(proc.get, path, None, timeout=60) for _ in range(8)]
            assert until(lambda: origin.hits(path) >= 1)
            time.sleep(0.3)  # let the others arrive and wait (not needed for the assertion)
            gates[path].set()
            results = [f.result() for f in futures]
            assert origin.hits(path) == 1 and {r.body for r in results} == {b"slow"}
            leader = [r.headers["x-served-by"] for r in results
                      if status_of(r).endswith("stored")]
            assert len(leader) == 1
            across = across or any("collapsed" in status_of(r)
                                   and r.headers["x-served-by"] != leader[0] for r in results)
            if across:
                break
    assert across


def test_a_body_cut_short_behind_is_not_stored(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/cut", headers={**TEXT, "cache-control": "max-age=600"},
                 body=b"x" * 200_000, truncate=True)
    srv = ocsi_server(proxied(origin))
    for _ in range(2):
        try:
            srv.get("/cut")
        except (http.client.HTTPException, OSError):
            pass  # the client sees the connection cut, as the proxy saw it
    assert origin.hits("/cut") == 2
    assert until(lambda: not list((srv.tmp / "data" / "cache").rglob("tmp/*")))


def test_a_client_that_goes_away_leaves_no_entry(ocsi_server: Any, origin: Origin) -> None:
    """The client reads 1 MiB of 64 MiB and closes: the entry being written is dropped (its
    temporary file removed) and the next request goes behind again."""
    origin.route("/big", headers={**TEXT, "cache-control": "max-age=600"},
                 stream=(64 * MiB, 64 * 1024))
    srv = ocsi_server(proxied(origin, 'maxentry="128MiB"'))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", "/big")
    resp = conn.getresponse()
    assert len(resp.read(MiB)) == MiB
    conn.close()
    assert until(lambda: not list((srv.tmp / "data" / "cache").rglob("tmp/*")))
    assert entry_files(srv.tmp) == []
    assert stream(srv.port, "/big")[:2] == (200, 64 * MiB)
    assert origin.hits("/big") == 2


def test_entries_not_used_for_inactive_are_removed(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", headers={**TEXT, "cache-control": "max-age=600"}, body=b"a")
    srv = ocsi_server(proxied(origin, 'inactive="1s"'))
    srv.get("/a")
    assert status_of(srv.get("/a")).startswith("hit") and entry_files(srv.tmp)
    assert until(lambda: entry_files(srv.tmp) == [])  # the sweep removed the unused file
    assert status_of(srv.get("/a")).startswith("fwd=uri-miss")
    assert origin.hits("/a") == 2
