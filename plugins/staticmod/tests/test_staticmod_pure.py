"""Pure functions: templates, ranges, conditionals, negotiation, listing HTML, path checks."""

from __future__ import annotations

import asyncio
import os
import pwd
import re

import pytest
from ocsi import Headers
from ocsi_ext_staticmod import conditional, listing
from ocsi_ext_staticmod.dest import Template, expand_users
from ocsi_ext_staticmod.encoding import choose
from ocsi_ext_staticmod.ranges import UNSATISFIABLE, Multipart, parse_range
from ocsi_ext_staticmod.resolve import bad_segment, inside, normalise, path_of_segments

ME = pwd.getpwuid(os.getuid())


# -- dest templates ------------------------------------------------------------------------------
@pytest.mark.parametrize("template, regexp, path, expected", [
    (r"/srv/i/\1", r"img/(.*)", "img/a.png", "/srv/i/a.png"),
    (r"/x/\0", r"(a)(b)", "ab", "/x/ab"),
    (r"/x/\2\1", r"(a)(b)", "ab", "/x/ba"),
    (r"/x/\$y", r"(.*)", "q", "/x/$y"),          # \x for another x gives x
    (r"/x/$1", r"(.*)", "q", "/x/$1"),            # $ is literal
    (r"/x/\1", r"(a)?b", "b", "/x/"),             # a group that did not match gives ""
])
def test_template_expand(template, regexp, path, expected):
    rx = re.compile(regexp)
    assert Template.parse(template, rx.groups).expand(rx.fullmatch(path)) == expected


@pytest.mark.parametrize("template, groups, msg", [
    ("/x\\", 1, "lone backslash"),
    (r"/x/\2", 1, "group \\2"),
    (r"/x/\1", 0, "0 groups"),
])
def test_template_errors(template, groups, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        Template.parse(template, groups)


def test_user_dirs():
    assert expand_users(f"$u({ME.pw_name})/public_html/x") == ME.pw_dir.rstrip("/") + "/public_html/x"
    assert expand_users("$u(no-such-user-ocsi)/x") is None
    assert expand_users("$u(../etc)/x") is None
    rx = re.compile(r"~([^/]*)(.*)")
    t = Template.parse(r"$u(\1)/public_html\2", rx.groups)
    assert t.expand(rx.fullmatch(f"~{ME.pw_name}/a/b")) == ME.pw_dir.rstrip("/") + "/public_html/a/b"
    assert t.expand(rx.fullmatch("~nobody-here-xyz/a")) is None


# -- path checks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seg", ["a/b", "a\\b", "a\x00b", "..", ".", "/"])
def test_bad_segments(seg):
    assert bad_segment(seg)
    assert path_of_segments("/srv", ("ok", seg, "x")) is None


def test_path_of_segments():
    assert path_of_segments("/srv", ("a", "b")) == ("/srv/a/b", False)
    assert path_of_segments("/srv", ("a", "")) == ("/srv/a", True)
    assert path_of_segments("/srv", ("",)) == ("/srv", True)
    assert path_of_segments("", ("",)) == ("/", True)
    assert path_of_segments("", ("etc",)) == ("/etc", False)
    assert path_of_segments("/srv", ("a", "", "b")) is None  # empty inner segment
    assert path_of_segments("/srv", ()) is None  # "OPTIONS *"


def test_normalise_and_inside():
    assert normalise("/a/./b//c/") == ("/a/b/c", True)
    assert normalise("/a/../b") is None
    assert normalise("/a\x00") is None
    assert inside("/srv/www/x", "/srv/www")
    assert inside("/srv/www", "/srv/www")
    assert not inside("/srv/www2/x", "/srv/www")
    assert not inside("/srv/wwwx", "/srv/www")
    assert inside("/anything", "")


# -- ranges ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, size, expected", [
    ("bytes=0-3", 10, [(0, 3)]),
    ("bytes=0-", 10, [(0, 9)]),
    ("bytes=-3", 10, [(7, 9)]),
    ("bytes=-30", 10, [(0, 9)]),
    ("bytes=5-100", 10, [(5, 9)]),
    ("BYTES = 1-1", 10, [(1, 1)]),
    ("bytes=0-1, 4-5", 10, [(0, 1), (4, 5)]),
    ("bytes=4-5,0-1", 10, [(0, 1), (4, 5)]),
    ("bytes=0-4,2-6", 10, [(0, 6)]),                 # overlapping: merged
    ("bytes=0-1,2-3", 10, [(0, 3)]),                 # adjacent: merged
    ("bytes=0-1,20-30", 10, [(0, 1)]),               # unsatisfiable member dropped
    ("bytes=10-", 10, UNSATISFIABLE),
    ("bytes=-0", 10, UNSATISFIABLE),
    ("bytes=0-0", 0, UNSATISFIABLE),
    ("bytes=-5", 0, UNSATISFIABLE),
    ("bytes=99999999999999999999999-", 10, UNSATISFIABLE),
    ("bytes=0-99999999999999999999999", 10, [(0, 9)]),
    ("bytes=3-1", 10, None),                         # invalid: ignored (200)
    ("bytes=a-b", 10, None),
    ("bytes=", 10, None),
    ("bytes=1", 10, None),
    ("items=0-1", 10, None),
    ("0-1", 10, None),
    ("bytes=0-1,,2-3", 10, [(0, 3)]),
    ("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 40, 2)), 100, None),  # too many: ignored
])
def test_parse_range(value, size, expected):
    assert parse_range(value, size, 16) == expected


def test_multipart_body(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"0123456789")
    fd = os.open(p, os.O_RDONLY)
    mp = Multipart(fd, [(0, 1), (5, 9)], 10, "text/plain", boundary="BND")
    body = mp.body()

    async def collect():
        try:
            return b"".join([c async for c in body.chunks()])
        finally:
            await body.aclose()

    data = asyncio.run(collect())
    assert data == (b"\r\n--BND\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01"
                    b"\r\n--BND\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-9/10\r\n\r\n56789"
                    b"\r\n--BND--\r\n")
    assert body.length == len(data)
    assert mp.content_type == "multipart/byteranges; boundary=BND"
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by aclose


# -- conditional requests --------------------------------------------------------------------------
ETAG = '"abc-10"'
LM = "Sun, 06 Nov 1994 08:49:37 GMT"
MTIME = 784111777


@pytest.mark.parametrize("method, headers, expected", [
    ("GET", {}, None),
    ("GET", {"if-none-match": ETAG}, 304),
    ("HEAD", {"if-none-match": ETAG}, 304),
    ("GET", {"if-none-match": 'W/"abc-10"'}, 304),            # weak comparison
    ("GET", {"if-none-match": '"x", "abc-10"'}, 304),
    ("GET", {"if-none-match": "*"}, 304),
    ("GET", {"if-none-match": '"other"'}, None),
    ("GET", {"if-none-match": '"other"', "if-modified-since": LM}, None),  # INM wins over IMS
    ("POST", {"if-none-match": ETAG}, 412),
    ("GET", {"if-modified-since": LM}, 304),
    ("GET", {"if-modified-since": "Sun, 06 Nov 1994 08:49:38 GMT"}, 304),
    ("GET", {"if-modified-since": "Sun, 06 Nov 1994 08:49:36 GMT"}, None),
    ("GET", {"if-modified-since": "garbage"}, None),
    ("GET", {"if-modified-since": "Sunday, 06-Nov-94 08:49:37 GMT"}, 304),  # RFC 850
    ("GET", {"if-modified-since": "Sun Nov  6 08:49:37 1994"}, 304),        # asctime
    ("POST", {"if-modified-since": LM}, None),
    ("GET", {"if-match": ETAG}, None),
    ("GET", {"if-match": "*"}, None),
    ("GET", {"if-match": '"other"'}, 412),
    ("GET", {"if-match": 'W/"abc-10"'}, 412),                  # strong comparison
    ("GET", {"if-unmodified-since": LM}, None),
    ("GET", {"if-unmodified-since": "Sun, 06 Nov 1994 08:49:36 GMT"}, 412),
    ("GET", {"if-match": ETAG, "if-unmodified-since": "Sun, 06 Nov 1994 08:49:36 GMT"}, None),
])
def test_evaluate(method, headers, expected):
    assert conditional.evaluate(method, Headers(headers.items()), ETAG, MTIME, LM) == expected


def test_evaluate_without_etag():
    h = Headers([("if-none-match", ETAG)])
    assert conditional.evaluate("GET", h, None, MTIME, LM) is None
    assert conditional.evaluate("GET", Headers([("if-match", ETAG)]), None, MTIME, LM) == 412
    assert conditional.evaluate("GET", Headers([("if-match", "*")]), None, MTIME, LM) is None


@pytest.mark.parametrize("value, expected", [
    (ETAG, True),
    ('"other"', False),
    ('W/"abc-10"', False),
    (LM, True),
    ("Sun, 06 Nov 1994 08:49:38 GMT", False),
    ("nonsense", False),
])
def test_if_range(value, expected):
    assert conditional.if_range_allows(value, ETAG, MTIME, LM) is expected


def test_if_range_weak_etag_never_matches():
    assert not conditional.if_range_allows('W/"abc-10"', 'W/"abc-10"', MTIME, LM)


# -- Accept-Encoding -------------------------------------------------------------------------------
@pytest.mark.parametrize("accept, available, expected", [
    ("gzip, deflate, br", ["br", "zstd", "gzip"], "br"),
    ("gzip", ["br", "gzip"], "gzip"),
    ("GZIP", ["gzip"], "gzip"),
    ("x-gzip", ["gzip"], "gzip"),
    ("gzip;q=0.5, br;q=0.9", ["gzip", "br"], "br"),
    ("gzip;q=1, br;q=1", ["gzip", "br"], "gzip"),            # tie: configured order
    ("br;q=0", ["br"], None),
    ("*", ["zstd"], "zstd"),
    ("*;q=0.2, identity", ["gzip"], None),                  # identity preferred
    ("deflate", ["gzip"], None),
    ("identity", ["gzip"], None),
    ("gzip;q=0.5, identity;q=0.5", ["gzip"], "gzip"),
    ("gzip;q=abc", ["gzip"], None),
    ("", ["gzip"], None),
])
def test_choose(accept, available, expected):
    assert choose(accept, available) == expected


def test_listing_shape():
    html = asyncio.run(listing.render_bytes("/empty/", [])).decode()
    assert html == ('<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml"><head><title>'
                    'Directory listing for /empty/</title></head><body><h1>Directory listing for '
                    '/empty/</h1><ul><li><a href="../">../</a></li></ul></body></html>')
    assert "<ul></ul>" in asyncio.run(listing.render_bytes("/", [])).decode()  # no parent at /


def test_listing_escaping(tmp_path):
    for name in ["a&b", "b c", "<x>", "é", ".hidden", "Z"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    entries = listing.read_entries(str(tmp_path))
    assert [e.name for e in entries] == [".hidden", "<x>", "Z", "a&b", "b c", "sub", "é"]
    html = asyncio.run(listing.render_bytes("/d&/", entries)).decode()
    assert "<title>Directory listing for /d&amp;/</title>" in html
    assert '<li><a href="a%26b">a&amp;b</a> <span class="size">1</span> <time' in html
    assert '<li><a href="b%20c">b c</a> <span class="size">1</span> <time' in html
    assert '<li><a href="%3Cx%3E">&lt;x&gt;</a> <span class="size">1</span> <time' in html
    assert '<li><a href="%C3%A9">é</a> <span class="size">1</span> <time' in html
    assert '<li><a href="sub/">sub/</a> <span class="size">-</span> <time' in html
    assert '<ul><li><a href="../">../</a></li>' in html  # the parent, below the root


def test_listing_details(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 1234)
    os.utime(tmp_path / "f", (0, 1_000_000_000))
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    html = asyncio.run(listing.render_bytes("/", listing.read_entries(str(tmp_path)))).decode()
    assert '<ul><li><a href="dangling">dangling</a> <span class="size">-</span></li>' in html
    assert ('<li><a href="f">f</a> <span class="size">1234</span> <time datetime='
            '"2001-09-09T01:46:40Z">2001-09-09 01:46</time></li>') in html


def test_listing_control_and_bad_utf8(tmp_path):
    raw = os.fsencode(str(tmp_path)) + b"/bad\xffname\x01"
    with open(raw, "w") as f:
        f.write("x")
    entries = listing.read_entries(str(tmp_path))
    html = asyncio.run(listing.render_bytes("/", entries)).decode("utf-8")
    assert '<a href="bad%FFname%01">bad\ufffdname&#1;</a>' in html


def test_listing_filter(tmp_path):
    for name in ["keep", "drop.php"]:
        (tmp_path / name).write_text("x")
    entries = listing.read_entries(str(tmp_path), hidden=lambda p: p.endswith(".php"))
    assert [(e.name, e.is_dir, e.size) for e in entries] == [("keep", False, 1)]
