"""``cache:purge URL`` and ``clearcache`` through the real command pipe, reloads, and
configuration errors located in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocsi import ConfigError
from ocsi.testing import assert_config_error
from origin import DATADIR, EXTS, Origin, proxied, status_of, until

TEXT = {"content-type": "text/plain", "cache-control": "max-age=600"}


@pytest.mark.parametrize("datadir", [True, False], ids=["files", "memory"])
def test_purge_one_url_through_the_pipe(ocsi_server: Any, origin: Origin, datadir: bool) -> None:
    def by_encoding(method: str, path: str, headers: dict[str, str]) -> Any:
        return 200, {**TEXT, "vary": "accept-encoding"}, headers.get("accept-encoding", "").encode()
    origin.route("/a", headers=TEXT, body=b"a")
    origin.route("/b", headers=TEXT, body=b"b")
    origin.route("/v", handler=by_encoding)
    srv = ocsi_server(proxied(origin, datadir=datadir))
    for path in ("/a", "/b"):
        srv.get(path)
    srv.get("/v", {"Accept-Encoding": "gzip"})
    srv.get("/v", {"Accept-Encoding": "br"})
    srv.command(f"cache:purge http://127.0.0.1:{srv.port}/a http://127.0.0.1:{srv.port}/v")
    assert status_of(srv.get("/a")).startswith("fwd=uri-miss")
    assert status_of(srv.get("/b")).startswith("hit")
    assert status_of(srv.get("/v", {"Accept-Encoding": "br"})).startswith("fwd=uri-miss")
    assert (origin.hits("/a"), origin.hits("/b"), origin.hits("/v")) == (2, 1, 3)


@pytest.mark.parametrize("datadir", [True, False], ids=["files", "memory"])
def test_clearcache_empties_it(ocsi_server: Any, origin: Origin, datadir: bool) -> None:
    origin.route("/a", headers=TEXT, body=b"a")
    origin.route("/b", headers=TEXT, body=b"b" * 500_000)
    srv = ocsi_server(proxied(origin, datadir=datadir))
    srv.get("/a")
    srv.get("/b")
    srv.command("clearcache")
    assert status_of(srv.get("/a")).startswith("fwd=uri-miss")
    assert status_of(srv.get("/a")).startswith("hit")
    if datadir:
        leftovers = [p for p in (srv.tmp / "data").iterdir() if p.name != "cache"]
        assert leftovers == [] and not list((srv.tmp / "data" / "cache").glob("*.cleared-*"))


def test_purge_reaches_every_worker(ocsi_process: Any, origin: Origin) -> None:
    """Two workers, entries in memory only: the master writes the command to each worker, so
    each goes behind exactly once more after it (then has the page again)."""
    origin.route("/c/a", headers=TEXT, body=b"a")
    proc = ocsi_process(EXTS + f'<host><site path="c"><cache/>'
                        f'<revproxy suburl="(.*)" dest="{origin.url}/c/\\1"/></site>'
                        '<served-by/></host>', args=["--workers", "2"])

    def cached_by_both(kind: str) -> Any:
        seen: set[str] = set()

        def more() -> bool:
            r = proc.get("/c/a")
            if status_of(r).startswith(kind):
                seen.add(r.headers["x-served-by"])
            return len(seen) == 2
        return more
    assert until(cached_by_both("fwd=uri-miss"), 60)  # each worker has its own copy
    assert origin.hits("/c/a") == 2
    proc.command(f"cache:purge http://127.0.0.1:{proc.port}/c/a")
    assert until(cached_by_both("fwd=uri-miss"), 60)
    assert until(cached_by_both("hit"), 60)
    assert origin.hits("/c/a") == 4


def test_a_reload_keeps_the_entries_of_a_zone(ocsi_server: Any, origin: Origin) -> None:
    origin.route("/a", headers=TEXT, body=b"a")
    srv = ocsi_server(proxied(origin, 'zone="front"'))
    srv.get("/a")
    srv.reload(DATADIR + EXTS + '<host><site path="x"/>'
               f'<cache zone="front"/><revproxy suburl="(.*)" dest="{origin.url}/\\1"/></host>')
    assert status_of(srv.get("/a")).startswith("hit")
    assert origin.hits("/a") == 1


@pytest.mark.parametrize("attrs, words", [
    ('statuses="200 abc"', "'abc' is not a status"),
    ('statuses="206"', "not 206"),
    ('bypass="query:x"', "header:NAME, cookie:NAME or arg:NAME"),
    ('cookies="keep"', 'cookies must be "skip" or "store"'),
    ('size="infinity"', "needs a bound"),
    ('maxentry="2GiB" size="1GiB"', "cannot be above size"),
    ('zone="../x"', "zone must be"),
    ('default="soon"', "not a valid duration"),
    ('name="a b"', "name must be a token"),
    ('lock="maybe"', "boolean"),
    ('sizes="1"', "unknown attribute"),
    ('requestcontrols="obey"', 'requestcontrols must be'),
])
def test_configuration_errors_are_located(ocsi_memory: Any, origin: Origin, attrs: str,
                                          words: str) -> None:
    xml = DATADIR + EXTS + (f'<host>\n\n<cache {attrs}/>'
                            f'<revproxy suburl="(.*)" dest="{origin.url}/\\1"/></host>')
    assert_config_error(ocsi_memory, xml, words, line=3)


def test_a_directory_that_cannot_be_made_fails_the_load(ocsi_memory: Any, origin: Origin,
                                                        tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    xml = proxied(origin).replace("{tmp}/data", str(tmp_path / "file"))
    with pytest.raises(ConfigError) as err:
        ocsi_memory(xml)
    assert "cannot open the cache directory" in str(err.value) and "ocsi.conf:" in str(err.value)
