"""Streaming keeps memory flat: 256 MiB each way through an ocsi process, whose peak resident
size is read from /proc before and after. ``OCSI_MEMORY_TEST_BYTES=1073741824`` makes it a
gigabyte each way (``pytest -s`` prints the growth)."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import EXT

SIZE = int(os.environ.get("OCSI_MEMORY_TEST_BYTES", 256 * 1024 * 1024))
#: Growth of the peak resident size allowed for moving SIZE bytes each way (buffers, pool,
#: allocator slack); holding either body would be at least SIZE.
ALLOWED = 48 * 1024 * 1024


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_quarter_gigabyte_each_way_keeps_memory_flat(ocsi_process, backend):
    b = backend()
    srv = ocsi_process('<maxrequestbodysize>infinity</maxrequestbodysize>' + EXT
                       + f'<host><revproxy suburl="(.*)" dest="{b.url}/\\1"/></host>')
    assert srv.get("/bytes/1000").status == 200  # warm: imports, pool, first buffers
    before = peak_rss(srv.proc.pid)

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.request("GET", f"/bytes/{SIZE}?chunked")
    r = conn.getresponse()
    got = 0
    while chunk := r.read(1 << 20):  # read and dropped: the client holds nothing either
        got += len(chunk)
    assert (r.status, got) == (200, SIZE)

    def upload() -> Iterator[Any]:
        piece = b"u" * (1 << 20)
        for _ in range(SIZE // len(piece)):
            yield piece

    conn.request("POST", "/discard", body=upload(), encode_chunked=True)
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, str(SIZE).encode())
    conn.close()
    growth = peak_rss(srv.proc.pid) - before
    print(f"{SIZE / 2**20:.0f} MiB each way: peak RSS {before / 2**20:.1f} -> "
          f"{(before + growth) / 2**20:.1f} MiB")
    assert growth < ALLOWED, f"peak RSS grew by {growth / 2**20:.1f} MiB"
