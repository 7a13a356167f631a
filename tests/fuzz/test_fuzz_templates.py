"""rewritemod, redirectmod and revproxy templates: refused at load, or expanded within bounds.

A regular expression and a template are drawn (groups nested, named, numbered past nine,
back-references, empty groups; templates with ``\\0``…``\\9``, ``$1``, ``\\g<1>``, lone
backslashes, dot segments, queries, percent signs, a hundred references), put in one of the
three elements, and requests are made whose paths carry what a template must not expand twice
(``\\1``, ``$1``, ``%5c1``) and long runs of one character. The configuration is either refused
with a located error, or every request is answered, without an internal error text, and what
the template produced (the ``Location``, the rewritten path seen by the next step, the target
the backend received) is no longer than the template with each reference replaced by the whole
request: a group's value is never expanded again.

These tests speak only of what a configuration does, not of the engine that matches: the
catastrophic patterns (exponential for a backtracking engine) are in their own test.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from fuzz_settings import bounded, budget
from hypothesis import given
from hypothesis import strategies as st

from ocsi._config.errors import ConfigError
from ocsi.testing import MemoryServer

REGEXES = ["(.*)", "(.*)/(.*)", "([^/]*)/?(.*)", "(a*)(a*)", "((a)|b)*(.*)", "()(.*)", "(?P<n>.*)",
           "(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)(.*)", "(.*?)(\\\\1)?(.*)", "([a-z]+)\\.(.*)", "(x)?(.*)",
           "((.*))", "[", "(", "(?P<n>x)(?P=n)(.*)", "(.*)\\1", "a|b|(.*)", "(?i)(.*)", ".*"]
PIECES = ["\\0", "\\1", "\\2", "\\3", "\\9", "$1", "$0", "\\g<1>", "\\g<n>", "\\\\", "\\", "\\\\1", "/",
          "x", "..", "%2e%2e", "?q=", "#f", "%", "%41", "&", "\u00e9", "//", "http://"]
SUBJECTS = ["", "a", "a" * 300, "\\1", "\\1" * 50, "$1", "%5c1", "%5C1%5c2", "%24%31", "..", "%2e%2e",
            "x/y/z", "q?x=\\1", "%C3%A9", "aaaa/bbbb", "%00", "%0d%0a", "\\g<1>"]


def template() -> st.SearchStrategy[str]:
    return st.one_of(st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
                     st.integers(50, 120).map(lambda n: "\\1" * n))


def references(text: str) -> int:
    return len(re.findall(r"\\[0-9]|\$[0-9]|\\g<[^>]*>", text))


class Backend(BaseHTTPRequestHandler):
    """Answers every request with the target it received."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.path.encode("latin-1", "replace")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join(10)


def element(kind: str, regex: str, tmpl: str, port: int, flag: bool) -> str:
    r, t = quoteattr(regex), quoteattr(tmpl)
    if kind == "rewrite":
        cont = ' continue="continue"' if flag else ""
        return (f'<site path="s"><rewrite regexp={r} url={t}{cont}/></site>'
                '<redirect suburl="(.*)" dest="/seen/\\1"/>')
    if kind == "redirect":
        return f'<site path="s"><redirect {"suburl" if flag else "regexp"}={r} dest={t}/></site>'
    dest = quoteattr(f"http://127.0.0.1:{port}/{tmpl}" if flag else tmpl)
    return f'<site path="s"><revproxy suburl={r} dest={dest}/></site>'


def check_answers(tmp: Path, kind: str, regex: str, tmpl: str, port: int, flag: bool,
                  subjects: list[str], outcomes: dict[str, int], seconds: int = 20) -> None:
    xml = ("".join(f'<extension findlib-package="ocsi-ext-{e}"/>' for e in ("rewritemod", "redirectmod", "revproxy"))
           + f"<host>{element(kind, regex, tmpl, port, flag)}</host>")
    try:
        with bounded(seconds):
            srv = MemoryServer(xml, tmp)
    except ConfigError as exc:
        assert exc.where and re.search(r":\d+", exc.where), str(exc)
        outcomes["refused"] = outcomes.get("refused", 0) + 1
        return
    try:
        for subject in subjects:
            path = "/s/" + subject
            with bounded(seconds):
                res = srv.get(path)
            produced = (res.headers.get("location") or "") if kind != "revproxy" else res.body.decode("latin-1")
            # the rewrite is followed by a redirect that carries the whole path once more
            copies = references(tmpl) + (1 if kind == "rewrite" else 0)
            bound = len(tmpl) + 100 + copies * (len(path) + 60)
            assert len(produced) <= bound, (kind, regex, tmpl, path, len(produced))
            assert b"Traceback" not in res.body, res.body[:300]
            outcomes[f"{res.status // 100}xx"] = outcomes.get(f"{res.status // 100}xx", 0) + 1
    finally:
        srv.stop()


def test_templates_expand_within_bounds_or_are_refused(tmp_path: Path, backend: int) -> None:
    outcomes: dict[str, int] = {}
    count = iter(range(1_000_000))

    @budget(80)
    @given(st.sampled_from(["rewrite", "redirect", "revproxy"]), st.sampled_from(REGEXES), template(),
           st.booleans(), st.lists(st.sampled_from(SUBJECTS), min_size=1, max_size=3))
    def load_and_request(kind: str, regex: str, tmpl: str, flag: bool, subjects: list[str]) -> None:
        d = tmp_path / str(next(count))
        d.mkdir()
        check_answers(d, kind, regex, tmpl, backend, flag, subjects, outcomes)

    load_and_request()
    assert outcomes.get("refused", 0) >= 5 and sum(v for k, v in outcomes.items() if k != "refused") >= 40, outcomes


CATASTROPHIC = ["(a+)+b", "(a|aa)*b", "(.*a){20}", "((a*)*)*b", "(a|a?)+b"]


@pytest.mark.parametrize("regex", CATASTROPHIC)
def test_a_catastrophic_pattern_is_refused_or_answers(tmp_path: Path, regex: str) -> None:
    outcomes: dict[str, int] = {}
    check_answers(tmp_path, "redirect", regex, "/x", 0, True, ["a" * 40 + "c"], outcomes, seconds=3)
