"""Time the regular-expression engines ocsi could match configuration patterns with.

Rows: the patterns configurations use (on the inputs they meet), then the pathological ones
from issue 26 (a crafted input against a pattern an administrator or a user could write).
Engines: the standard library's ``re`` (backtracking), ``re2`` (``google-re2``'s ``re``-like
wrapper, linear time), ``regex`` with ``timeout=`` (backtracking with a deadline), and what
the server runs: :func:`ocsi.parse_regex`'s ``fullmatch`` (groups filled, for templates) and
``matches`` (yes or no, for conditions). The ``*`` patterns of ``<cors origins>`` are timed as
regexes (what they were) and as :class:`ocsi.Wildcard` (what they are).

For a backtracking engine the pathological inputs are kept short enough to finish, and the
next sizes show how the time grows; the linear engines are also given the full-size input.

    .venv/bin/python bench/regex_engines.py [--number N] [--quick]

Figures are microseconds per match (the best of five ``timeit`` repeats), or seconds where
marked. The machine is shared: compare rows measured in the same run only.
"""

from __future__ import annotations

import argparse
import re
import time
import timeit
from collections.abc import Callable
from typing import Any

try:
    import re2
except ImportError:  # pragma: no cover - the benchmark says what is missing
    re2 = None
try:
    import regex
except ImportError:  # pragma: no cover
    regex = None

import ocsi

#: (name, pattern, subject, method): what configurations write, on what they meet.
TYPICAL: list[tuple[str, str, str, str]] = [
    ("path admin.* (no match)", r"admin.*", "images/logo/2024/header.png", "fullmatch"),
    ("path admin.* (match)", r"admin.*", "admin/users/42/edit", "fullmatch"),
    ("static img/(.*)", r"img/(.*)", "img/2024/photos/holiday-0042.jpg", "fullmatch"),
    ("rewrite old/(.*)", r"old/(.*)", "old/docs/manual/chapter-3.html", "fullmatch"),
    ("header .*curl.*", r".*curl.*", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0",
     "fullmatch"),
    ("hidefile .*\\.(php|inc)", r".*\.(php|inc)", "/srv/www/site/assets/js/app.min.js", "fullmatch"),
    ("revproxy (.*)", r"(.*)", "api/v1/users/42?expand=groups", "fullmatch"),
    ("outputfilter sub", r"http://backend:8080/(.*)", "http://backend:8080/login?next=/", "sub"),
]

#: (name, pattern, make subject of size n, sizes a backtracking engine can finish, full size)
PATHOLOGICAL: list[tuple[str, str, Callable[[int], str], list[int], int]] = [
    ("user a{0,25}x8 then b", "a{0,25}" * 8 + "b", lambda n: "a" * n, [30, 36, 40], 60),
    ("admin ([a-z0-9]+)*-x", r"([a-z0-9]+)*-x", lambda n: "a" * n, [16, 18, 20], 26),
    ("cors 16 stars", "https://" + "[^/]*" * 16 + r"\.example\.org",
     lambda n: "https://" + "a" * n, [12, 13], 32),  # shorter than 20: refused by length
    ("cors https://*.*.example.org", r"https://[^/]*\.[^/]*\.example\.org",
     lambda n: "https://" + "a." * (n // 2) + "example.com", [2000, 4000], 20000),
    ("user file at the size cap, 9 groups", "(?:(.*a)(.*a)(.*a)(.*a)(.*a)(.*a)(.*a)(.*a)(.*a)){3}",
     lambda n: "a" * n, [], 8192),
]

#: The cors rows as the wildcards they are written as.
WILDCARDS = {"cors 16 stars": "https://" + "*" * 16 + ".example.org",
             "cors https://*.*.example.org": "https://*.*.example.org"}


def per_match_us(call: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def once_s(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def engines(pattern: str) -> dict[str, Any]:
    """Compiled ``pattern`` per engine (``.`` matches a newline in all of them)."""
    out: dict[str, Any] = {"re": re.compile(pattern, re.DOTALL)}
    if re2 is not None:
        opts = re2.Options()
        opts.dot_nl = True
        opts.log_errors = False
        out["re2"] = re2.compile(pattern, opts)
    if regex is not None:
        out["regex"] = regex.compile(pattern, regex.DOTALL | regex.VERSION0)
    out["ocsi"] = out["ocsi matches"] = ocsi.parse_regex(pattern)
    return out


def call_of(name: str, rx: Any, method: str, subject: str) -> Callable[[], Any]:
    if method == "sub":
        if name.startswith("ocsi"):
            template = ocsi.GroupTemplate(r"https://example.org/\1", rx.groups)
            return lambda: rx.sub(template, subject)
        return lambda: rx.sub(r"https://example.org/\1", subject)
    if name == "ocsi matches":
        test = rx.matches
        return lambda: test(subject)
    if name == "regex":
        fm = rx.fullmatch
        return lambda: fm(subject, timeout=0.05)
    fm = rx.fullmatch
    return lambda: fm(subject)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=20000, help="matches per timing (typical rows)")
    ap.add_argument("--quick", action="store_true", help="skip the slowest backtracking sizes")
    args = ap.parse_args()
    names = ["re", "re2", "regex", "ocsi", "ocsi matches"]
    print("## Typical patterns: µs per match (best of 5)\n")
    print("| row | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row, pattern, subject, method in TYPICAL:
        compiled = engines(pattern)
        cells = []
        for engine in names:
            if engine not in compiled:
                cells.append("n/a")
                continue
            call = call_of(engine, compiled[engine], method, subject)
            cells.append(f"{per_match_us(call, args.number):.2f}")
        print(f"| {row} | " + " | ".join(cells) + " |")

    print("\n## Pathological patterns: seconds for one match\n")
    columns = ("re", "regex", "re2", "ocsi", "ocsi matches")
    print("| row | input | re | regex (timeout 0.05 s) | re2 | ocsi | ocsi matches | Wildcard |")
    print("|---|---|---|---|---|---|---|---|")
    for row, pattern, make, sizes, full in PATHOLOGICAL:
        compiled = engines(pattern)
        wildcard = ocsi.Wildcard(WILDCARDS[row], "/") if row in WILDCARDS else None
        if args.quick:
            sizes = sizes[:2]
        for size in sizes + [full]:
            subject = make(size)
            cells = []
            for name in columns:
                rx = compiled.get(name)
                if rx is None or (name == "re" and size == full and full not in sizes):
                    cells.append("not run" if rx is not None else "n/a")
                    continue
                try:
                    cells.append(f"{once_s(call_of(name, rx, 'fullmatch', subject)):.6f}")
                except TimeoutError:
                    cells.append("TimeoutError after 0.05")
            cells.append(f"{once_s(lambda: wildcard.matches(subject)):.6f}" if wildcard else "")
            print(f"| {row} | {len(subject)} chars | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
