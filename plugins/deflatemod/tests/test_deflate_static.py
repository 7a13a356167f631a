"""With staticmod as the producer, over real sockets: files (no sendfile then), listings,
ranges and conditional requests."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deflate_content import payload

pytest.importorskip("ocsi_ext_staticmod")
pytest.importorskip("ocsi.server")

GZ = {"Accept-Encoding": "gzip"}


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.fixture
def site(ocsi_server: Callable[..., Any], tmp_path: Path) -> Any:
    www = tmp_path / "www"
    (www / "dir").mkdir(parents=True)
    (www / "index.html").write_bytes(payload(20000))
    (www / "big.css").write_bytes(payload(600_000, seed=5))
    (www / "img.png").write_bytes(payload(5000, seed=6))
    (www / "tiny.txt").write_bytes(b"hi\n")
    _age(www / "index.html", www / "big.css")
    for i in range(50):
        (www / "dir" / f"file-{i:03}.txt").write_text("x")
    LISTDIRS_EXT = LISTDIRS = ""
    if _has("ocsi_ext_extendconfiguration"):
        LISTDIRS_EXT = '<extension findlib-package="ocsi-ext-extendconfiguration"/>'
        LISTDIRS = '<listdirs value="true"/>'
    return ocsi_server(f"""
        <extension findlib-package="ocsi-ext-staticmod"/>
        <extension findlib-package="ocsi-ext-deflatemod"/>
        {LISTDIRS_EXT}
        <host hostfilter="*">
          {LISTDIRS}
          <static dir="{www}"/>
          <deflate compress="allbut"><type>image/*</type></deflate>
        </host>""")


def _age(*paths: Any) -> None:
    """Files written a minute ago: the compressed cache keeps only files not just written."""
    for path in paths:
        then = time.time() - 60
        os.utime(path, (then, then))


def test_file_compressed_and_identical(site: Any) -> None:
    for name, data in (("index.html", payload(20000)), ("big.css", payload(600_000, seed=5))):
        r = site.get("/" + name, GZ)
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["content-length"] is None
        assert r.headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(r.body) == data
        plain = site.get("/" + name)
        assert plain.body == data and plain.headers["content-length"] == str(len(data))


def test_excluded_and_tiny_files(site: Any) -> None:
    assert site.get("/img.png", GZ).headers["content-encoding"] is None
    r = site.get("/tiny.txt", GZ)
    assert r.headers["content-encoding"] is None and r.body == b"hi\n"


def test_range_request_untouched(site: Any) -> None:
    r = site.get("/index.html", {"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
    assert r.status == 206 and r.headers["content-encoding"] is None
    assert r.body == payload(20000)[:100]


def test_conditional_get_with_weakened_etag(site: Any) -> None:
    r = site.get("/index.html", GZ)
    etag = r.headers["etag"]
    assert etag.startswith('W/"')
    again = site.get("/index.html", {"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status == 304 and again.body == b""


def test_head_matches_get(site: Any) -> None:
    # before the file is in the compressed cache (no length), and after (sized)
    for _ in range(2):
        h, g = site.head("/index.html", GZ), site.get("/index.html", GZ)
        assert h.status == 200 and h.body == b""
        for name in ("content-encoding", "etag", "vary", "content-length"):
            assert h.headers[name] == g.headers[name], name
    assert g.headers["content-length"] == str(len(g.body))


def test_not_found_not_compressed(site: Any) -> None:
    r = site.get("/missing.html", GZ)
    assert r.status == 404 and r.headers["content-encoding"] is None


def test_negotiation_406_with_static(site: Any) -> None:
    assert site.get("/index.html", {"Accept-Encoding": "identity;q=0"}).status == 406
    assert site.get("/img.png", {"Accept-Encoding": "identity;q=0"}).status == 200


@pytest.mark.skipif(not _has("ocsi_ext_extendconfiguration"), reason="needs <listdirs>")
def test_listing_compressed(site: Any) -> None:
    plain = site.get("/dir/")
    r = site.get("/dir/", GZ)
    assert plain.status == r.status == 200 and b"file-049.txt" in plain.body
    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(r.body) == plain.body


def test_a_file_compressed_once_is_served_sized_from_the_cache(site: Any, tmp_path: Path) -> None:
    first = site.get("/index.html", GZ)
    assert first.headers["transfer-encoding"] == "chunked"
    again = site.get("/index.html", GZ)
    assert again.headers["content-length"] == str(len(again.body))
    assert again.headers["transfer-encoding"] is None
    assert again.body == first.body and gzip.decompress(again.body) == payload(20000)
    assert again.headers["etag"].startswith('W/') and again.headers["vary"] == "Accept-Encoding"
    head = site.head("/index.html", GZ)
    assert head.headers["content-length"] == str(len(again.body)) and head.body == b""
    # an edited file is never served from the old entry, even at the same size; while it is
    # fresh (racy timestamps) it is compressed each time, then kept again
    page = tmp_path / "www" / "index.html"
    page.write_bytes(payload(20000, seed=9))
    for _ in range(2):
        fresh = site.get("/index.html", GZ)
        assert gzip.decompress(fresh.body) == payload(20000, seed=9)
        assert fresh.headers["transfer-encoding"] == "chunked"
    _age(page)
    site.get("/index.html", GZ)
    assert site.get("/index.html", GZ).headers["transfer-encoding"] is None
    # clearcache empties it
    site.command("clearcache")
    assert site.get("/index.html", GZ).headers["transfer-encoding"] == "chunked"


@pytest.mark.parametrize("options,cached", [
    ('<cache size="0"/>', False),
    ('<cache maxfile="10KiB"/>', False),  # the 20 KB page is too big to keep
    ('<cache size="1MiB" maxfile="20000"/>', True),
])
def test_cache_options(ocsi_server: Callable[..., Any], tmp_path: Path, options: str, cached: bool) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_bytes(payload(20000))
    _age(www / "index.html")
    srv = ocsi_server(f"""
        <extension findlib-package="ocsi-ext-staticmod"/>
        <extension findlib-package="ocsi-ext-deflatemod">{options}</extension>
        <host><static dir="{www}"/><deflate compress="only"><type>text/*</type></deflate></host>""")
    for _ in range(2):
        r = srv.get("/index.html", GZ)
        assert gzip.decompress(r.body) == payload(20000)
    assert (r.headers["content-length"] is not None) is cached
