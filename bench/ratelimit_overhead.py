"""What a ``<ratelimit>`` that never refuses costs per request, measured in process.

    .venv/bin/python bench/ratelimit_overhead.py [--n 20000] [--repeat 7]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/ratelimit_overhead.py --only plain|limited|none --n 10000

Three figures, each the best of ``--repeat`` runs (the machine is shared: the best run is
the one least disturbed), in microseconds per request of CPU time (``time.process_time``):

- ``take``: the shared-table update alone (digest, ``flock``, the slot, unlock);
- ``step``: the ``<ratelimit>`` step's ``handle`` (the key, the mark, ``take``);
- ``pipeline``: ``runtime.respond`` for a static file (host matching, staticmod, the
  response) in a configuration without and with ``<ratelimit rate="1000000r/s"/>`` before
  ``<static>``: the difference is the cost a request pays; the ratio is against the pipeline
  alone, the HTTP layer (parsing, writing) excluded, so the share of a whole request is lower.

On a shared machine times move a lot from run to run; instruction counts do not. ``--only``
runs just ``n`` pipeline requests (``plain``, ``limited``) or none (``none``: the set-up), so
that callgrind's totals, differenced, give instructions per request (user space: the two
``flock`` system calls are not in them).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ocsi import NotFound
from ocsi._extensions.loader import new_plugin_manager
from ocsi.runtime import build_runtime
from ocsi.testing import make_request
from ocsi_ext_ratelimit import ratelimit


def best(fn: Callable[[], None], n: int, repeat: int) -> float:
    """Microseconds of CPU per call of ``fn``, best of ``repeat`` runs of ``n`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times) / n * 1e6


def config(tmp: Path, limited: bool) -> Path:
    www = tmp / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text("<p>hello</p>\n" * 8)
    limit = '<ratelimit rate="1000000r/s"/>' if limited else ""
    path = tmp / ("limited.conf" if limited else "plain.conf")
    path.write_text(
        f"<ocsigen><server><port>127.0.0.1:0</port><datadir>{tmp}/data</datadir>"
        '<extension findlib-package="ocsi-ext-staticmod"/>'
        '<extension findlib-package="ocsi-ext-ratelimit"/>'
        f'<host>{limit}<static dir="{www}"/></host></server></ocsigen>')
    return path


def only(which: str, n: int) -> None:
    """``n`` pipeline requests and nothing else (for instruction counts)."""
    with tempfile.TemporaryDirectory() as d:
        loop = asyncio.new_event_loop()
        runtime = loop.run_until_complete(
            build_runtime(new_plugin_manager(), str(config(Path(d), which == "limited"))))

        async def respond() -> None:
            for _ in range(n if which != "none" else 0):
                response = await runtime.respond(make_request("GET", "/index.html"))
                await response.body.aclose()
        warm = loop.run_until_complete(runtime.respond(make_request("GET", "/index.html")))
        loop.run_until_complete(warm.body.aclose())  # first-request work is not counted
        loop.run_until_complete(respond())
        loop.run_until_complete(runtime.retire())
        loop.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--only", choices=["plain", "limited", "none"])
    a = p.parse_args()
    n, repeat = a.n, a.repeat
    if a.only is not None:
        only(a.only, n)
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        step = ratelimit(rate="1000000r/s", directory=str(tmp / "t"))
        bucket = step.bucket

        def take() -> None:
            for _ in range(n):
                bucket.take("ip 127.0.0.1")

        loop = asyncio.new_event_loop()
        state = NotFound()

        async def handle_many() -> None:
            for _ in range(n):
                r = make_request("GET", "/")
                await step.handle(r, state)

        async def requests_only() -> None:
            for _ in range(n):
                make_request("GET", "/")

        rows = {"take": best(take, n, repeat)}
        base = best(lambda: loop.run_until_complete(requests_only()), n, repeat)
        rows["step"] = best(lambda: loop.run_until_complete(handle_many()), n, repeat) - base

        pipelines = {}
        for limited in (False, True):
            runtime = loop.run_until_complete(build_runtime(new_plugin_manager(), str(config(tmp, limited))))

            async def respond(runtime=runtime) -> None:  # type: ignore[no-untyped-def]
                for _ in range(n):
                    response = await runtime.respond(make_request("GET", "/index.html"))
                    await response.body.aclose()

            pipelines[limited] = best(lambda: loop.run_until_complete(respond()), n, repeat) - base
            loop.run_until_complete(runtime.retire())
        loop.close()
    print(f"take              {rows['take']:7.2f} µs/request")
    print(f"step (handle)     {rows['step']:7.2f} µs/request")
    print(f"pipeline, plain   {pipelines[False]:7.2f} µs/request")
    print(f"pipeline, limited {pipelines[True]:7.2f} µs/request  "
          f"(+{pipelines[True] - pipelines[False]:.2f} µs, "
          f"+{100 * (pipelines[True] / pipelines[False] - 1):.1f} % of the pipeline)")


if __name__ == "__main__":
    main()
