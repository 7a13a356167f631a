"""The <static> step driven through a real runtime built from XML, without sockets."""

from __future__ import annotations

import gzip
import os
import re

import pytest
from ocsi import ConfigError
from staticmod_attacks import ATTACKS, REGEXP_ATTACKS, SECRET, make_tree, owner_mismatch_possible


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("static")
    www = make_tree(base)
    (www / "index.html").write_text("<p>home</p>\n")
    (www / "a b(1).txt").write_text("spaces\n")
    (www / "a&b").write_text("amp\n")
    (www / "é.txt").write_text("accent\n")
    (www / "style.css").write_text("body{}\n" * 100)
    (www / "style.css.gz").write_bytes(gzip.compress(b"body{}\n" * 100))
    (www / "style.css.br").write_bytes(b"BROTLI")
    (www / "pic.png").write_bytes(b"\x89PNG....")
    (www / "app.js").write_text("x=1\n")
    (www / "data.bin").write_bytes(bytes(range(256)) * 4)
    (www / "noext").write_text("?")
    (www / "x.php").write_text("<?php")
    (www / ".htaccess").write_text("deny")
    (www / "empty").mkdir()
    (www / "main").mkdir()
    (www / "main" / "main.html").write_text("main\n")
    (www / "main" / "index.html").write_text("index\n")
    (www / ".git").mkdir()
    (www / ".git" / "config").write_text("[core]")
    os.symlink("hello.txt", www / "link-in")
    os.mkfifo(www / "fifo")
    (base / "errors").mkdir()
    (base / "errors" / "404.html").write_text("custom 404\n")
    return base


@pytest.fixture(scope="module")
def rt(tree, module_runtime):
    return module_runtime(f'<host><static dir="{tree}/www"/></host>')


# -- basics --------------------------------------------------------------------------------------
def test_serve_file(rt, tree):
    g = rt.get("/hello.txt")
    assert g.status == 200 and g.body == b"hello\n"
    assert g.headers.get("content-type") == "text/plain; charset=utf-8"
    assert g.headers.get("accept-ranges") == "bytes"
    assert re.fullmatch(r'"[0-9a-f]+-6"', g.headers.get("etag"))
    assert g.headers.get("last-modified").endswith(" GMT")
    assert g.headers.get("cache-control") is None


@pytest.mark.parametrize("path, ctype", [
    ("/index.html", "text/html; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/pic.png", "image/png"),
    ("/app.js", "text/javascript; charset=utf-8"),
    ("/noext", "application/octet-stream"),
    ("/data.bin", "application/octet-stream"),
])
def test_content_types(rt, path, ctype):
    assert rt.get(path).headers.get("content-type") == ctype


def test_index_and_redirects(rt):
    assert rt.get("/").body == b"<p>home</p>\n"
    assert rt.get("/sub/").body == b"sub index\n"
    g = rt.get("/sub?x=1&y")
    assert g.status == 301 and g.headers.get("location") == "http://example.org:8080/sub/?x=1&y"
    g = rt.get("/sub", host="example.org:8080")
    assert g.headers.get("location") == "http://example.org:8080/sub/"
    assert rt.get("/empty/").status == 404


def test_not_found_cases(rt):
    for target in ["/nope", "/hello.txt/", "/hello.txt/x", "/sub/nope/x", "/fifo",
                   "/" + "a" * 300, "/" + "/".join(["a" * 200] * 30)]:
        g = rt.get(target)
        assert g.status == 404, target
        assert g.body == b"Error: Not Found"


def test_percent_decoded_names(rt):
    assert rt.get("/a%20b%281%29.txt").body == b"spaces\n"
    assert rt.get("/a%26b").body == b"amp\n"
    assert rt.get("/%C3%A9.txt").body == b"accent\n"


def test_inside_site(runtime, tree):
    rt = runtime(f'<host><site path="s"><static dir="{tree}/www"/></site></host>')
    assert rt.get("/s/a%20b%281%29.txt").body == b"spaces\n"
    assert rt.get("/s/").body == b"<p>home</p>\n"
    g = rt.get("/s/sub")
    assert g.status == 301 and g.headers.get("location") == "http://example.org:8080/s/sub/"
    assert rt.get("/hello.txt").status == 404


def test_usedefaulthostname(runtime, tree):
    rt = runtime(f'<usedefaulthostname/><host defaulthostname="www.example.com">'
                 f'<static dir="{tree}/www"/></host>')
    g = rt.get("/sub?q", host="other.org")
    assert g.headers.get("location") == "http://www.example.com:8080/sub/?q"


def test_head(rt):
    g = rt.request("HEAD", "/hello.txt")
    assert g.status == 200 and g.headers.get("etag") and g.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_methods(rt, method):
    g = rt.request(method, "/hello.txt")
    assert g.status == 405 and g.headers.get("allow") == "GET, HEAD"
    assert rt.request(method, "/sub/").status == 405
    assert rt.request(method, "/nope").status == 404


def test_no_fd_leak(rt):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        rt.get("/hello.txt")
        rt.request("HEAD", "/hello.txt")
        rt.get("/hello.txt", headers={"range": "bytes=0-1,3-4"})
        rt.get("/hello.txt", headers={"if-none-match": "*"})
        rt.get("/hello.txt", headers={"range": "bytes=100-"})
    assert len(os.listdir("/proc/self/fd")) <= before + 2


# -- conditional and range requests -------------------------------------------------------------
def test_conditional(rt):
    g = rt.get("/hello.txt")
    etag, lm = g.headers.get("etag"), g.headers.get("last-modified")
    n = rt.get("/hello.txt", headers={"if-none-match": etag})
    assert n.status == 304 and n.body == b"" and n.headers.get("etag") == etag
    assert n.headers.get("content-type") is None
    assert rt.get("/hello.txt", headers={"if-modified-since": lm}).status == 304
    assert rt.get("/hello.txt", headers={"if-none-match": '"x"'}).status == 200
    assert rt.get("/hello.txt", headers={"if-match": '"x"'}).status == 412
    assert rt.get("/hello.txt", headers={"if-match": etag}).status == 200
    assert rt.request("HEAD", "/hello.txt", headers={"if-none-match": etag}).status == 304


def test_ranges(rt):
    full = bytes(range(256)) * 4
    g = rt.get("/data.bin", headers={"range": "bytes=0-3"})
    assert g.status == 206 and g.body == full[:4] and g.headers.get("content-range") == "bytes 0-3/1024"
    g = rt.get("/data.bin", headers={"range": "bytes=-4"})
    assert g.body == full[-4:] and g.headers.get("content-range") == "bytes 1020-1023/1024"
    g = rt.get("/data.bin", headers={"range": "bytes=1000-"})
    assert g.body == full[1000:]
    g = rt.get("/data.bin", headers={"range": "bytes=2000-"})
    assert g.status == 416 and g.headers.get("content-range") == "bytes */1024"
    g = rt.get("/data.bin", headers={"range": "bytes=5-1"})
    assert g.status == 200 and g.body == full
    g = rt.get("/data.bin", headers={"range": "bytes=0-1,10-11"})
    assert g.status == 206
    ctype = g.headers.get("content-type")
    boundary = ctype.split("boundary=")[1]
    assert ctype.startswith("multipart/byteranges; boundary=")
    parts = g.body.split(b"--" + boundary.encode())
    assert len(parts) == 4 and parts[-1] == b"--\r\n"
    assert b"Content-Range: bytes 0-1/1024\r\n\r\n" + full[:2] + b"\r\n" in parts[1]
    assert b"Content-Range: bytes 10-11/1024\r\n\r\n" + full[10:12] + b"\r\n" in parts[2]
    assert b"Content-Type: application/octet-stream" in parts[1]


def test_if_range(rt):
    etag = rt.get("/data.bin").headers.get("etag")
    g = rt.get("/data.bin", headers={"range": "bytes=0-3", "if-range": etag})
    assert g.status == 206
    g = rt.get("/data.bin", headers={"range": "bytes=0-3", "if-range": '"stale"'})
    assert g.status == 200 and len(g.body) == 1024


def test_changed_file_gets_new_validators(runtime, tree):
    rt = runtime(f'<host><static dir="{tree}/www"/></host>')
    p = tree / "www" / "changing.txt"
    p.write_text("one")
    g1 = rt.get("/changing.txt")
    p.write_text("three")
    os.utime(p, ns=(0, 1_000_000_000))
    g2 = rt.get("/changing.txt")  # cached check, same inode: fresh fstat
    assert g2.body == b"three" and g2.headers.get("etag") != g1.headers.get("etag")
    p.unlink()
    p.write_text("replaced!")  # another inode: the cached check is redone
    assert rt.get("/changing.txt").body == b"replaced!"
    p.unlink()
    assert rt.get("/changing.txt").status == 404


def test_etag_modes(runtime, tree):
    weak = runtime(f'<host><static dir="{tree}/www" etag="weak"/></host>')
    g = weak.get("/hello.txt")
    assert g.headers.get("etag").startswith('W/"')
    assert weak.get("/hello.txt", headers={"if-none-match": g.headers.get("etag")}).status == 304
    off = runtime(f'<host><static dir="{tree}/www" etag="off" maxranges="0"/></host>')
    g = off.get("/hello.txt", headers={"range": "bytes=0-1"})
    assert g.status == 200 and g.headers.get("etag") is None and g.headers.get("accept-ranges") == "none"


# -- cache attribute --------------------------------------------------------------------------------
def test_cache_attribute(runtime, tree):
    rt = runtime(f'<host><static dir="{tree}/www" cache="60"/></host>')
    g = rt.get("/hello.txt")
    assert g.headers.get("cache-control") == "max-age=60"
    import time

    from ocsi.httputil import parse_http_date
    assert abs(parse_http_date(g.headers.get("expires")) - (time.time() + 60)) < 3
    for value in ("0", "no"):
        rt = runtime(f'<host><static dir="{tree}/www" cache="{value}"/></host>')
        g = rt.get("/hello.txt")
        assert g.headers.get("cache-control") == "no-cache" and g.headers.get("expires") == "0"
        assert rt.get("/hello.txt", headers={"if-none-match": "*"}).headers.get("cache-control") == "no-cache"


# -- precompressed siblings -------------------------------------------------------------------------
def test_precompressed(runtime, tree):
    rt = runtime(f'<host><static dir="{tree}/www" precompressed="br gzip"/></host>')
    plain = rt.get("/style.css")
    assert plain.headers.get("content-encoding") is None and plain.headers.get("vary") == "Accept-Encoding"
    assert plain.body == b"body{}\n" * 100
    g = rt.get("/style.css", headers={"accept-encoding": "gzip"})
    assert g.headers.get("content-encoding") == "gzip" and gzip.decompress(g.body) == plain.body
    assert g.headers.get("content-type") == "text/css; charset=utf-8"
    assert g.headers.get("etag") != plain.headers.get("etag") and g.headers.get("etag").endswith('-gz"')
    b = rt.get("/style.css", headers={"accept-encoding": "gzip, br"})
    assert b.headers.get("content-encoding") == "br" and b.body == b"BROTLI"
    assert rt.get("/style.css", headers={"accept-encoding": "zstd"}).headers.get("content-encoding") is None
    assert rt.get("/hello.txt", headers={"accept-encoding": "gzip"}).headers.get("vary") is None
    n = rt.get("/style.css", headers={"accept-encoding": "gzip", "if-none-match": g.headers.get("etag")})
    assert n.status == 304 and n.headers.get("vary") == "Accept-Encoding"
    off = runtime(f'<host><static dir="{tree}/www"/></host>')
    g = off.get("/style.css", headers={"accept-encoding": "gzip, br"})
    assert g.headers.get("content-encoding") is None and g.headers.get("vary") is None


# -- listings, hide/forbid, index order ---------------------------------------------------------------
def test_listing(runtime, tree):
    rt = runtime(f'<host><listdirs value="true"/><hidefile><extension ext="php"/></hidefile>'
                 f'<static dir="{tree}/www"/></host>')
    g = rt.get("/empty/")
    assert g.status == 200 and g.headers.get("content-type") == "text/html; charset=utf-8"
    assert b"<title>Directory listing for /empty/</title>" in g.body and b'<ul><li><a href="../">../</a></li></ul>' in g.body
    g = rt.get("/main/")
    assert g.body == b"index\n"  # an index wins over the listing
    (tree / "www" / "empty" / "x.php").write_text("hidden")
    (tree / "www" / "empty" / "a&b").write_text("")
    try:
        g = rt.get("/empty/")
        assert b'<li><a href="a%26b">a&amp;b</a> <span class="size">0</span>' in g.body and b"x.php" not in g.body
    finally:
        (tree / "www" / "empty" / "x.php").unlink()
        (tree / "www" / "empty" / "a&b").unlink()
    assert rt.request("POST", "/empty/").status == 405


def test_listing_scoped_to_site(runtime, tree):
    rt = runtime(f'<host><site path="a"><listdirs value="true"/><static dir="{tree}/www"/></site>'
                 f'<site path="b"><static dir="{tree}/www"/></site></host>')
    assert rt.get("/a/empty/").status == 200
    assert rt.get("/b/empty/").status == 404


def test_hide_and_forbid(runtime, tree):
    rt = runtime(f'<host><hidefile><extension ext="php"/><file file=".git"/></hidefile>'
                 f'<forbidfile><file file=".htaccess"/></forbidfile>'
                 f'<static dir="{tree}/www"/></host>')
    assert rt.get("/x.php").status == 404
    assert rt.get("/.htaccess").status == 403
    assert rt.get("/.git/config").status == 404  # hidden directory hides its content
    assert rt.get("/hello.txt").status == 200


def test_defaultindex_order(runtime, tree):
    rt = runtime(f'<host><defaultindex><index>main.html</index><index>index.html</index>'
                 f'</defaultindex><static dir="{tree}/www"/></host>')
    assert rt.get("/main/").body == b"main\n"
    assert rt.get("/sub/").body == b"sub index\n"
    none = runtime(f'<host><defaultindex/><static dir="{tree}/www"/></host>')
    assert none.get("/main/").status == 404


def test_contenttype_and_charset_rules(runtime, tree):
    rt = runtime(f'<host><contenttype default="text/x-default"><extension ext="txt" value="text/x-t"/>'
                 f'</contenttype><charset><extension ext="txt" value="latin1"/></charset>'
                 f'<static dir="{tree}/www"/></host>')
    assert rt.get("/hello.txt").headers.get("content-type") == "text/x-t; charset=latin1"
    assert rt.get("/noext").headers.get("content-type") == "text/x-default; charset=utf-8"
    assert rt.get("/pic.png").headers.get("content-type") == "image/png"


def test_host_and_site_charset(runtime, tree):
    rt = runtime(f'<host charset="iso-8859-1"><static dir="{tree}/www"/>'
                 f'</host>')
    assert rt.get("/hello.txt").headers.get("content-type") == "text/plain; charset=iso-8859-1"
    rt = runtime(f'<host><site path="s" charset=""><static dir="{tree}/www"/></site></host>')
    assert rt.get("/s/hello.txt").headers.get("content-type") == "text/plain"


def test_mimefile(runtime, tree, tmp_path):
    (tmp_path / "mime.types").write_text("# custom\ntext/x-foo foo\n")
    (tree / "www" / "a.foo").write_text("foo")
    rt = runtime(f'<mimefile>{tmp_path}/mime.types</mimefile><host><static dir="{tree}/www"/></host>')
    assert rt.get("/a.foo").headers.get("content-type") == "text/x-foo; charset=utf-8"


# -- symlinks --------------------------------------------------------------------------------------
def _policy(runtime, tree, policy):
    return runtime(f'<host><followsymlinks value="{policy}"/><static dir="{tree}/www"/></host>')


def test_symlink_policies(runtime, tree):
    assert _policy(runtime, tree, "never").get("/link-in").status == 403
    assert _policy(runtime, tree, "ownermatch").get("/link-in").body == b"hello\n"
    assert _policy(runtime, tree, "always").get("/link-in").body == b"hello\n"
    if owner_mismatch_possible():
        assert _policy(runtime, tree, "ownermatch").get("/link-out").status == 403
        assert _policy(runtime, tree, "ownermatch").get("/link-out-dir/secret.txt").status == 403
    assert _policy(runtime, tree, "always").get("/link-out").body == SECRET


def test_symlink_loop_is_404(runtime, tree):
    www = tree / "www"
    os.symlink("loop1", www / "loop2")
    os.symlink("loop2", www / "loop1")
    try:
        # never: the link itself is refused; otherwise it cannot be resolved (ELOOP): absent
        assert _policy(runtime, tree, "never").get("/loop1").status == 403
        assert _policy(runtime, tree, "ownermatch").get("/loop1").status == 404
        assert _policy(runtime, tree, "always").get("/loop1").status == 404
    finally:
        (www / "loop1").unlink()
        (www / "loop2").unlink()


def test_eacces_is_403(runtime, tree, monkeypatch):
    import ocsi_ext_staticmod.resolve as resolve

    rt = runtime(f'<host><static dir="{tree}/www"/></host>')
    real_open = os.open

    def deny(path, *a, **kw):
        if str(path).endswith("hello.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    monkeypatch.setattr(resolve.os, "open", deny)
    assert rt.get("/hello.txt").status == 403


def test_eacces_on_directory_is_403(runtime):
    """A directory the server may not enter is 403; as root the requests are made with the
    effective uid of nobody, for whom permissions count (as the socket twin does)."""
    import shutil
    import tempfile
    from contextlib import contextmanager

    @contextmanager
    def unprivileged():
        if os.getuid() != 0:
            yield
            return
        os.seteuid(65534)
        try:
            yield
        finally:
            os.seteuid(0)

    d = tempfile.mkdtemp(prefix="ocsi-eacces-")
    try:
        os.chmod(d, 0o755)
        os.mkdir(f"{d}/locked")
        with open(f"{d}/locked/f", "w") as f:
            f.write("x")
        with open(f"{d}/open.txt", "w") as f:
            f.write("open")
        os.chmod(f"{d}/open.txt", 0o644)
        os.chmod(f"{d}/locked", 0)
        rt = runtime(f'<host><static dir="{d}"/></host>')
        with unprivileged():
            locked, opened = rt.get("/locked/f"), rt.get("/open.txt")
        assert locked.status == 403
        assert (opened.status, opened.body) == (200, b"open")
    finally:
        os.chmod(f"{d}/locked", 0o755)
        shutil.rmtree(d)


# -- attack table ----------------------------------------------------------------------------------
POLICIES = (["ownermatch"] if owner_mismatch_possible() else []) + ["never"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("target, what", ATTACKS, ids=[a[1] for a in ATTACKS])
def test_attack_table(runtime, tree, policy, target, what):
    rt = runtime(f'<host><followsymlinks value="{policy}"/><static dir="{tree}/www"/></host>')
    g = rt.get(target)
    assert g.status != 200 and SECRET not in g.body, (target, what, g.status)


@pytest.mark.parametrize("target, what", REGEXP_ATTACKS, ids=[a[1] for a in REGEXP_ATTACKS])
def test_regexp_attack_table(runtime, tree, target, what):
    policy = "ownermatch" if owner_mismatch_possible() else "never"
    rt = runtime(f'<host><followsymlinks value="{policy}"/>'
                 f'<static regexp="files/(.*)" dest="{tree}/www/\\1" root="{tree}/www"/>'
                 f'<static regexp="p(.*)" dest="{tree}/www\\1" root="{tree}/www"/></host>')
    g = rt.get(target)
    assert g.status != 200 and SECRET not in g.body, (target, what, g.status)


# -- regexp, code, userconf-like modes ---------------------------------------------------------------
def test_regexp_mode(runtime, tree):
    rt = runtime(f'<host><static regexp="img/(.*)" dest="{tree}/www/\\1"/>'
                 f'<static regexp="img" dest="{tree}/www/hello.txt"/></host>')
    assert rt.get("/img/pic.png").body == b"\x89PNG...."
    assert rt.get("/img/a%20b%281%29.txt").body == b"spaces\n"
    assert rt.get("/img").body == b"hello\n"
    assert rt.get("/imgx").status == 404  # anchored
    assert rt.get("/x/img/pic.png").status == 404
    g = rt.get("/img/sub")
    assert g.status == 301 and g.headers.get("location") == "http://example.org:8080/img/sub/"


def test_regexp_root_and_sibling(runtime, tree):
    rt = runtime(f'<host><static regexp="p(.*)" dest="{tree}/www\\1" root="{tree}/www"/></host>')
    assert rt.get("/p/hello.txt").body == b"hello\n"
    assert rt.get("/p2/secret.txt").status == 403


def test_user_dirs(runtime, tree, monkeypatch):
    import pwd

    from ocsi_ext_staticmod import dest

    home = tree / "home-alice"
    (home / "public_html").mkdir(parents=True)
    (home / "public_html" / "x").write_text("alice's")
    monkeypatch.setattr(dest, "home_of", lambda n: str(home) if n == "alice" else None)
    rt = runtime('<host><static regexp="~([^/]*)(.*)" dest="$u(\\1)/public_html\\2"/></host>')
    assert rt.get("/~alice/x").body == b"alice's"
    assert rt.get("/~bob/x").status == 404
    assert pwd  # keep import


def test_code_page(runtime, tree):
    rt = runtime(f'<host><static dir="{tree}/www"/>'
                 f'<static code="40." dest="{tree}/errors/404.html" cache="no"/></host>')
    g = rt.get("/nope")
    assert g.status == 404 and g.body == b"custom 404\n"
    assert g.headers.get("content-type") == "text/html; charset=utf-8" and g.headers.get("cache-control") == "no-cache"
    assert rt.get("/hello.txt").body == b"hello\n"
    assert rt.request("POST", "/nope").status == 404
    g = rt.get("/.git/config")  # protected by default: the error page, as for any miss
    assert g.status == 404 and g.body == b"custom 404\n"
    rt = runtime(f'<host><forbidfile><file file=".htaccess"/></forbidfile>'
                 f'<static dir="{tree}/www"/><static code="403" dest="{tree}/errors/404.html"/></host>')
    g = rt.get("/.htaccess")
    assert g.status == 403 and g.body == b"custom 404\n"
    assert rt.get("/nope").body == b"Error: Not Found"


def test_host_fallthrough_and_site_continue(runtime, tree):
    rt = runtime(f'<host><site path="s"><static dir="{tree}/www/sub"/></site>'
                 f'<static dir="{tree}/www"/></host>')
    assert rt.get("/s/index.html").body == b"sub index\n"
    assert rt.get("/s/hello.txt").status == 404  # nothing at www/s/hello.txt
    rt = runtime(f'<host><site path="sub"><static dir="{tree}/www/empty"/></site>'
                 f'<static dir="{tree}/www"/></host>')
    assert rt.get("/sub/index.html").body == b"sub index\n"  # site misses, host level serves


# -- configuration errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("element, message", [
    ("<static/>", "Missing attribute dir, regexp, or code for <static>"),
    ('<static dir="/x" regexp="a"/>', "Wrong attributes for <static>"),
    ('<static dir="/x" code="404"/>', "Wrong attributes for <static>"),
    ('<static regexp="a"/>', "Wrong attributes for <static>"),
    ('<static dir="/x" root="/"/>', "Wrong attributes for <static>"),
    ('<static code="404" dest="/x" root="/"/>', "Wrong attributes for <static>"),
    ('<static dir="/x" foo="1"/>', "unknown attribute 'foo'"),
    ('<static dir="/x" cache="soon"/>', "attribute 'cache'"),
    ('<static dir="/x" cache="-1"/>', "attribute 'cache'"),
    ('<static dir="/x" precompressed="lzma"/>', "not a supported precompressed coding"),
    ('<static dir="/x" etag="maybe"/>', "etag="),
    ('<static regexp="(a" dest="/x"/>', "bad regular expression '(a'"),
    ('<static regexp="(a)" dest="/x/\\2"/>', "group \\2"),
    ('<static regexp="a" dest="/x\\"/>', "lone backslash"),
    ('<static dir="/x">text</static>', "no text"),
])
def test_config_errors(runtime, element, message):
    with pytest.raises(ConfigError) as info:
        runtime(f"<host>{element}</host>")
    assert message in str(info.value)
    assert "ocsi.conf:5:" in str(info.value)  # the line of <host> in the test document


def test_extension_options(runtime, tree):
    with pytest.raises(ConfigError, match="unknown element <static>"):
        runtime(f'<host><static dir="{tree}/www"/></host>', extensions=())

    def build(opts):
        return runtime(f'<extension findlib-package="ocsi-ext-staticmod">{opts}</extension>'
                       f'<host><static dir="{tree}/www"/></host>', extensions=())

    step = build('<filecache ttl="0" entries="10"/>').runtime.hosts[0].steps[0]
    assert step.cache.ttl == 0 and step.cache.max_entries == 10
    with pytest.raises(ConfigError, match="unknown option <bogus>"):
        build("<bogus/>")
    with pytest.raises(ConfigError, match="attribute 'ttl'"):
        build('<filecache ttl="soon"/>')


# -- user configuration files (userconf) -------------------------------------------------------------
def test_userconf_confinement(tree, ocsi_memory):
    from ocsi.embed import host
    from ocsi_ext_staticmod import Static, make_spec

    home = tree / "userhome"
    (home / "public_html").mkdir(parents=True, exist_ok=True)
    (home / "public_html" / "p.txt").write_text("user page")
    with pytest.raises(ValueError, match="'..' is not allowed"):
        make_spec(dir="../www", userconf=str(home))
    with pytest.raises(ValueError, match="root= is not allowed"):
        make_spec(regexp="(.*)", dest="\\1", root="/", userconf=str(home))
    d = Static(make_spec(dir="public_html", userconf=str(home)))
    r = Static(make_spec(regexp="u/(.*)", dest="public_html/\\1", userconf=str(home)))
    esc = Static(make_spec(regexp="e/(.*)", dest="\\1/../www/hello.txt", userconf=str(home)))
    srv = ocsi_memory([host(d, r, esc)])
    assert (srv.get("/p.txt").status, srv.get("/p.txt").body) == (200, b"user page")
    assert (srv.get("/u/p.txt").status, srv.get("/u/p.txt").body) == (200, b"user page")
    assert srv.get("/e/x").status == 403


# -- Python API --------------------------------------------------------------------------------------
def test_python_constructor(tree, ocsi_memory):
    from ocsi.embed import host, site
    from ocsi_ext_staticmod import FileCache, static

    srv = ocsi_memory([host(
        site("s", static(dir=str(tree / "www"), cache="no", precompressed="gzip",
                         file_cache=FileCache(ttl=0))),
        static(code="404", dest=str(tree / "errors" / "404.html")))])
    r = srv.get("/s/hello.txt")
    assert r.body == b"hello\n" and r.headers.get("cache-control") == "no-cache"
    r = srv.get("/s/style.css", {"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"
    r = srv.get("/s/nope")
    assert r.status == 404 and r.body == b"custom 404\n"
    for bad in [dict(), dict(dir="/x", regexp="a"), dict(regexp="a"), dict(dir="/x", etag="x"),
                dict(dir="/x", precompressed="lzw"), dict(regexp="(a", dest="/x")]:
        with pytest.raises(ValueError):
            static(**bad)


def test_small_files_kept_in_memory(tmp_path, ocsi_memory):
    """A small settled file is answered from memory; a rewrite in place, a replacement and a
    file written just now are all seen on the next request."""
    from ocsi.embed import host
    from ocsi_ext_staticmod import FileCache, static

    f = tmp_path / "k.txt"
    f.write_bytes(b"first")
    os.utime(f, ns=(0, 10**9))  # settled long ago
    cache = FileCache()
    srv = ocsi_memory([host(static(dir=str(tmp_path), file_cache=cache))])
    one = srv.get("/k.txt")
    assert (one.status, one.body, cache.kept) == (200, b"first", 1)
    again = srv.get("/k.txt")
    assert again.body == b"first" and again.headers.get("etag") == one.headers.get("etag")
    assert srv.get("/k.txt", {"If-None-Match": one.headers.get("etag")}).status == 304
    assert srv.get("/k.txt", {"Range": "bytes=1-2"}).body == b"ir"
    with open(f, "r+b") as fh:  # the same size, in place: only the modification time tells
        fh.write(b"other")
    os.utime(f, ns=(0, 2 * 10**9))
    two = srv.get("/k.txt")
    assert two.body == b"other" and two.headers.get("etag") != one.headers.get("etag")
    f.unlink()
    f.write_bytes(b"replaced")
    os.utime(f, ns=(0, 2 * 10**9))
    assert srv.get("/k.txt").body == b"replaced"
    fresh = tmp_path / "fresh.txt"
    fresh.write_bytes(b"just written")
    kept = cache.kept
    assert srv.get("/fresh.txt").body == b"just written" and cache.kept == kept
    f.unlink()
    assert srv.get("/k.txt").status == 404


def test_redirect_ports(runtime, tree):
    """The port of an absolute redirect: the Host's when it has one; else the listening port
    unless it is the scheme's; a defaulthttpport on the host replaces the listening port."""
    plain = runtime(f'<host><static dir="{tree}/www"/></host>')
    assert plain.get("/sub", host="h.example").headers.get("location") == "http://h.example:8080/sub/"
    assert plain.get("/sub", host="h.example:9").headers.get("location") == "http://h.example:9/sub/"
    given = runtime(f'<host defaulthttpport="80"><static dir="{tree}/www"/></host>')
    assert given.get("/sub", host="h.example").headers.get("location") == "http://h.example/sub/"
    other = runtime(f'<host defaulthttpport="8000"><static dir="{tree}/www"/></host>')
    assert other.get("/sub", host="h.example").headers.get("location") == "http://h.example:8000/sub/"
    on80 = runtime(f'<host><static dir="{tree}/www"/></host>', port=80)
    assert on80.get("/sub", host="h.example").headers.get("location") == "http://h.example/sub/"
