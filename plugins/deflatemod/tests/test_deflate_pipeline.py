"""``<deflate>`` in a running pipeline: in memory and over real sockets (``serve`` runs both)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from deflate_content import extension, payload
from ocsi_ext_deflatemod.codecs import AVAILABLE

HTML = payload(20000)
TEXT_ONLY = '<deflate compress="only"><type>text/*</type></deflate>'


def conf(content: str, deflate: str = TEXT_ONLY, options: str = "") -> str:
    return extension(options) + f'<host hostfilter="*">{content}{deflate}</host>'


# -- negotiation cases, end to end --------------------------------------------------------------------
@pytest.mark.parametrize("accept, coding, status", [
    (None, None, 200),
    ("identity", None, 200),
    ("gzip", "gzip", 200),
    ("x-gzip", "gzip", 200),
    ("GZIP", "gzip", 200),
    ("deflate", "deflate", 200),
    ("gzip;q=0, deflate", "deflate", 200),
    ("gzip;q=0.5, deflate", "deflate", 200),
    ("gzip, *", "gzip", 200),
    ("gzip;q=1, *;q=0.1", "gzip", 200),
    ("gzip, identity", "gzip", 200),
    ("gzip;q=0.5, identity", None, 200),
    ("identity;q=0, gzip", "gzip", 200),
    ("compress", None, 200),
    ("identity;q=0", None, 406),
    ("*;q=0", None, 406),
    ("compress, identity;q=0", None, 406),
] + [(c, c, 200) for c in AVAILABLE if c in ("br", "zstd")])
def test_negotiation_table(serve: Callable[..., Any], accept: Any, coding: Any, status: Any) -> None:
    c = serve(conf("<payload/>"))
    r = c.get("/index.html", {"Accept-Encoding": accept} if accept is not None else None)
    assert r.status == status
    if status == 406:
        assert "content-encoding" not in r.headers
        return
    assert r.headers.get("content-encoding") == coding
    assert r.headers["vary"] == "Accept-Encoding"
    assert r.decoded() == HTML
    if coding is None:
        assert int(r.headers["content-length"]) == len(HTML)
    else:
        assert r.chunked and "content-length" not in r.headers


def test_deflate_is_the_zlib_format(serve: Callable[..., Any]) -> None:
    r = serve(conf("<payload/>")).get("/", {"Accept-Encoding": "deflate"})
    assert r.body[0] == 0x78 and r.decoded() == HTML


def test_gzip_header(serve: Callable[..., Any]) -> None:
    r = serve(conf("<payload/>")).get("/", {"Accept-Encoding": "gzip"})
    assert r.body[:4] == b"\x1f\x8b\x08\x00" and r.body[4:8] == b"\0\0\0\0"


# -- bytes: sizes around the buffer and read boundaries, every producer ------------------------------
@pytest.mark.parametrize("buffer", ["1024", "8192"])
@pytest.mark.parametrize("kind", ["bytes", "file", "stream"])
def test_round_trip_sizes(serve: Callable[..., Any], kind: str, buffer: str) -> None:
    sizes = [256, 1023, 1024, 1025, 4095, 4096, 4097, 8191, 8192, 8193, 100_000,
             262_143, 262_144, 262_145]
    content = "".join(
        f'<payload path="{n}" size="{n}" seed="{n}" kind="{kind}" chunk="1000"/>' for n in sizes)
    c = serve(conf(content, options=f'<buffer size="{buffer}"/><minsize size="0"/>'))
    for n in sizes:
        for coding in AVAILABLE:
            r = c.get(f"/{n}", {"Accept-Encoding": coding})
            assert r.headers.get("content-encoding") == coding, (n, coding)
            assert r.decoded() == payload(n, n), (kind, n, coding)


def test_stream_of_unknown_length(serve: Callable[..., Any]) -> None:
    c = serve(conf('<payload kind="stream" known-length="false" chunk="333" size="50000"/>'))
    r = c.get("/", {"Accept-Encoding": "gzip"})
    assert r.decoded() == payload(50000) and r.chunked
    r = c.get("/", {"Accept-Encoding": "identity"})       # unknown length: no minsize check
    assert r.body == payload(50000) and "content-encoding" not in r.headers


def test_proxied_content_length_is_removed(serve: Callable[..., Any]) -> None:
    c = serve(conf('<payload kind="stream" size="30000" header-content-length="30000"/>'))
    r = c.get("/", {"Accept-Encoding": "gzip"})
    assert r.chunked and r.decoded() == payload(30000)


# -- only / allbut, types and extensions -----------------------------------------------------------------
def test_allbut_image(serve: Callable[..., Any]) -> None:
    c = serve(conf('<payload path=".*png" type="image/png"/><payload type="text/css"/>',
                   '<deflate compress="allbut"><type>image/*</type></deflate>'))
    gz = {"Accept-Encoding": "gzip"}
    png = c.get("/a.png", gz)
    assert "content-encoding" not in png.headers and "vary" not in png.headers
    assert png.body == HTML
    assert c.get("/a.css", gz).headers.get("content-encoding") == "gzip"


@pytest.mark.parametrize("rules, ctype, path, compressed", [
    ("<type>text/html</type>", "text/html; charset=utf-8", "/x", True),
    ("<type>text/html</type>", "TEXT/HTML", "/x", True),
    ("<type>text/html</type>", "text/plain", "/x", False),
    ("<type>*/javascript</type>", "application/javascript", "/x", True),
    ("<type>application/*+json</type>", "application/ld+json", "/x", True),
    ("<type>application/*+json</type>", "application/json", "/x", False),
    ("<type>*/*</type>", "font/woff2", "/x", True),
    ("<extension>.css</extension>", "application/octet-stream", "/a/b.css", True),
    ("<extension>.css</extension>", "application/octet-stream", "/a/b.js", False),
    ("<extension>gz</extension>", "application/octet-stream", "/x.tgz", True),
    ("<type>image/*</type><extension>.svg</extension>", "image/svg+xml", "/x.svg", True),
])
def test_rules(memory: Callable[..., Any], rules: Any, ctype: Any, path: Any, compressed: Any) -> None:
    c = memory(conf(f'<payload type="{ctype}"/>', f'<deflate compress="only">{rules}</deflate>'))
    r = c.get(path, {"Accept-Encoding": "gzip"})
    assert ("content-encoding" in r.headers) is compressed
    c = memory(conf(f'<payload type="{ctype}"/>', f'<deflate compress="allbut">{rules}</deflate>'))
    r = c.get(path, {"Accept-Encoding": "gzip"})
    assert ("content-encoding" in r.headers) is not compressed


# -- what is never touched ------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload_xml", [
    '<payload type=""/>',                                    # no Content-Type
    '<payload status="206" header-content-range="bytes 0-19999/40000"/>',
    '<payload status="204" size="0"/>',
    '<payload status="404"/>',                               # an error page from a generator
    '<payload status="301" header-location="/x"/>',
    '<payload header-content-encoding="br"/>',               # already encoded: never twice
    '<payload header-cache-control="public, no-transform"/>',
])
def test_untouched(serve: Callable[..., Any], payload_xml: str) -> None:
    r = serve(conf(payload_xml)).get("/", {"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") in (None, "br")
    assert "vary" not in r.headers


def test_not_modified_untouched(memory: Callable[..., Any]) -> None:
    r = memory(conf('<payload status="304" size="0" header-etag="&quot;e&quot;"/>')).get(
        "/", {"Accept-Encoding": "gzip"})
    assert r.status == 304 and "content-encoding" not in r.headers and r.headers["etag"] == '"e"'


def test_core_error_pages_never_compressed(serve: Callable[..., Any]) -> None:
    r = serve(conf('<payload path="a"/>')).get("/zz", {"Accept-Encoding": "gzip"})
    assert r.status == 404 and "content-encoding" not in r.headers


def test_small_bodies(serve: Callable[..., Any]) -> None:
    c = serve(conf('<payload size="255"/>'))
    r = c.get("/", {"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers and r.headers["vary"] == "Accept-Encoding"
    assert r.body == payload(255)
    r = c.get("/", {"Accept-Encoding": "gzip, identity;q=0"})  # identity refused: compress
    assert r.headers["content-encoding"] == "gzip" and r.decoded() == payload(255)
    c = serve(conf('<payload size="256"/>'))
    assert c.get("/", {"Accept-Encoding": "gzip"}).headers["content-encoding"] == "gzip"
    c = serve(conf('<payload size="1000"/>', options='<minsize size="2kB"/>'))
    assert "content-encoding" not in c.get("/", {"Accept-Encoding": "gzip"}).headers


def test_head_has_the_headers_of_get(serve: Callable[..., Any]) -> None:
    c = serve(conf('<payload kind="file" header-etag="&quot;v1&quot;"/>'))
    gz = {"Accept-Encoding": "gzip"}
    get, head = c.get("/", gz), c.head("/", gz)
    assert head.status == get.status == 200
    assert head.body == b""
    for name in ("content-encoding", "vary", "etag", "content-type"):
        assert head.headers.get(name) == get.headers.get(name), name
    assert "content-length" not in head.headers and "content-length" not in get.headers


# -- headers ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("etag, expected", [
    ('"abc"', 'W/"abc"'),
    ('W/"abc"', 'W/"abc"'),
])
def test_etag_weakened(serve: Callable[..., Any], etag: str, expected: str) -> None:
    c = serve(conf(f'<payload header-etag="{etag.replace(chr(34), "&quot;")}"/>'))
    assert c.get("/", {"Accept-Encoding": "gzip"}).headers["etag"] == expected
    assert c.get("/", {"Accept-Encoding": "identity"}).headers["etag"] == etag


@pytest.mark.parametrize("vary, expected", [
    ("Origin", "Origin, Accept-Encoding"),
    ("accept-encoding", "accept-encoding"),
    ("Origin, Accept-Encoding", "Origin, Accept-Encoding"),
    ("*", "*"),
])
def test_vary_merged(serve: Callable[..., Any], vary: str, expected: str) -> None:
    c = serve(conf(f'<payload header-vary="{vary}"/>'))
    assert c.get("/", {"Accept-Encoding": "gzip"}).headers["vary"] == expected
    assert c.get("/").headers["vary"] == expected


def test_accept_ranges_dropped_when_compressed(serve: Callable[..., Any]) -> None:
    c = serve(conf('<payload header-accept-ranges="bytes"/>'))
    assert "accept-ranges" not in c.get("/", {"Accept-Encoding": "gzip"}).headers
    assert c.get("/").headers["accept-ranges"] == "bytes"


# -- options and placement ------------------------------------------------------------------------------------------
def test_level_option(memory: Callable[..., Any]) -> None:
    sizes = {}
    for level in (1, 9):
        c = memory(conf('<payload size="200000"/>', options=f'<compress level="{level}"/>'))
        r = c.get("/", {"Accept-Encoding": "gzip"})
        assert r.decoded() == payload(200000)
        sizes[level] = len(r.body)
    assert sizes[9] < sizes[1]


def test_encodings_option(serve: Callable[..., Any]) -> None:
    c = serve(conf("<payload/>", options='<encodings value="deflate gzip"/>'))
    assert c.get("/", {"Accept-Encoding": "gzip, deflate, br"}).headers["content-encoding"] == "deflate"
    r = c.get("/", {"Accept-Encoding": "br"})
    assert "content-encoding" not in r.headers


def test_deflate_in_site_and_nested(serve: Callable[..., Any]) -> None:
    xml = extension() + ('<host hostfilter="*"><site path="s"><payload/>' + TEXT_ONLY + '</site>'
                         '<site path="t"><payload/></site></host>')
    c = serve(xml)
    gz = {"Accept-Encoding": "gzip"}
    assert c.get("/s/x", gz).headers.get("content-encoding") == "gzip"
    assert "content-encoding" not in c.get("/t/x", gz).headers


def test_deflate_before_content_does_nothing(serve: Callable[..., Any]) -> None:
    xml = extension() + f'<host hostfilter="*">{TEXT_ONLY}<payload/></host>'
    assert "content-encoding" not in serve(xml).get("/", {"Accept-Encoding": "gzip"}).headers


def test_two_filters_do_not_compress_twice(serve: Callable[..., Any]) -> None:
    r = serve(conf("<payload/>", TEXT_ONLY + TEXT_ONLY)).get("/", {"Accept-Encoding": "gzip"})
    assert r.decoded() == HTML and r.headers["vary"] == "Accept-Encoding"
