"""Per-call cost of what a request pays for paths, host patterns and accesscontrol conditions.

Uses only what every version of ocsi has (``decode_path``, ``HostPattern``, accesscontrol's
``path``/``header``/``ip`` constructors), so the same script measures two checkouts: run it
with each one's interpreter, interleaved, and compare the rows (the machine is shared: take
the best of several runs)::

    /path/to/before/.venv/bin/python bench/match_costs.py
    .venv/bin/python bench/match_costs.py

The static and ipcheck rows of bench/run.py go through ``decode_path`` on a plain path, the
``hostfilter="*"`` test and, for ipcheck, one ``<ip>`` condition; the other rows are what a
configuration with path or header guards or host patterns adds.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

import ocsi
from ocsi._http.urlpath import decode_path
from ocsi._pipeline.engine import HostPattern
from ocsi_ext_accesscontrol import conditions as C


class _Headers:
    def __init__(self, value: str) -> None:
        self.value = value

    def get_all(self, name: str) -> list[str]:
        return [self.value]


class _Request:
    """The attributes the conditions read."""

    def __init__(self, sub_path: str) -> None:
        self.sub_path_str = sub_path
        self.headers = _Headers("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0")


def rows() -> dict[str, Callable[[], Any]]:
    other, admin = _Request("images/logo/2024/header.png"), _Request("admin/users/42")
    star, wild = HostPattern.parse("*"), HostPattern.parse("*.example.org")
    path, group, header = C.path("admin.*"), C.path("admin/(.*)"), C.header("user-agent", ".*curl.*")
    return {
        "decode_path('/index.html') (static, ipcheck)": lambda: decode_path("/index.html"),
        "decode_path('/a%20b/c.html')": lambda: decode_path("/a%20b/c.html"),
        "hostfilter='*' (static, ipcheck)": lambda: star.matches("localhost", 80),
        "hostfilter='*.example.org'": lambda: wild.matches("www.example.org", 80),
        "<path regexp='admin.*'/>, no": lambda: path(other),  # type: ignore[arg-type]
        "<path regexp='admin.*'/>, yes": lambda: path(admin),  # type: ignore[arg-type]
        "<path regexp='admin/(.*)'/>, yes": lambda: group(admin),  # type: ignore[arg-type]
        "<header regexp='.*curl.*'/>, no": lambda: header(other),  # type: ignore[arg-type]
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=200_000)
    args = ap.parse_args()
    print(f"ocsi from {ocsi.__file__}")
    for name, call in rows().items():
        best = min(timeit.repeat(call, number=args.number, repeat=7)) / args.number
        print(f"| {name} | {best * 1e9:.0f} ns |")


if __name__ == "__main__":
    main()
