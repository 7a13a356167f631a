"""The <static> step driven through a real runtime built from XML, without sockets."""

from __future__ import annotations

import gzip
import os
import re

import pytest

from ocsi.config.errors import ConfigError
from staticmod_attacks import ATTACKS, REGEXP_ATTACKS, SECRET, make_tree, owner_mismatch_possible
from staticmod_helpers import fetch, open_fds, runtime


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
def rt(tree):
    return runtime(f'<host><static dir="{tree}/www"/></host>')


# -- basics --------------------------------------------------------------------------------------
def test_serve_file(rt, tree):
    g = fetch(rt, "/hello.txt")
    assert g.status == 200 and g.body == b"hello\n"
    assert g.h("content-type") == "text/plain; charset=utf-8"
    assert g.h("accept-ranges") == "bytes"
    assert re.fullmatch(r'"[0-9a-f]+-6"', g.h("etag"))
    assert g.h("last-modified").endswith(" GMT")
    assert g.h("cache-control") is None


@pytest.mark.parametrize("path, ctype", [
    ("/index.html", "text/html; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/pic.png", "image/png"),
    ("/app.js", "text/javascript; charset=utf-8"),
    ("/noext", "application/octet-stream"),
    ("/data.bin", "application/octet-stream"),
])
def test_content_types(rt, path, ctype):
    assert fetch(rt, path).h("content-type") == ctype


def test_index_and_redirects(rt):
    assert fetch(rt, "/").body == b"<p>home</p>\n"
    assert fetch(rt, "/sub/").body == b"sub index\n"
    g = fetch(rt, "/sub?x=1&y")
    assert g.status == 301 and g.h("location") == "http://example.org/sub/?x=1&y"
    g = fetch(rt, "/sub", host="example.org:8080")
    assert g.h("location") == "http://example.org:8080/sub/"
    assert fetch(rt, "/empty/").status == 404


def test_not_found_cases(rt):
    for target in ["/nope", "/hello.txt/", "/hello.txt/x", "/sub/nope/x", "/fifo",
                   "/" + "a" * 300, "/" + "/".join(["a" * 200] * 30)]:
        g = fetch(rt, target)
        assert g.status == 404, target
        assert g.body == b"Error: Not Found"


def test_percent_decoded_names(rt):
    assert fetch(rt, "/a%20b%281%29.txt").body == b"spaces\n"
    assert fetch(rt, "/a%26b").body == b"amp\n"
    assert fetch(rt, "/%C3%A9.txt").body == b"accent\n"


def test_inside_site(tree):
    rt = runtime(f'<host><site path="s"><static dir="{tree}/www"/></site></host>')
    assert fetch(rt, "/s/a%20b%281%29.txt").body == b"spaces\n"
    assert fetch(rt, "/s/").body == b"<p>home</p>\n"
    g = fetch(rt, "/s/sub")
    assert g.status == 301 and g.h("location") == "http://example.org/s/sub/"
    assert fetch(rt, "/hello.txt").status == 404


def test_usedefaulthostname(tree):
    rt = runtime(f'<usedefaulthostname/><host defaulthostname="www.example.com">'
                 f'<static dir="{tree}/www"/></host>')
    g = fetch(rt, "/sub?q", host="other.org")
    assert g.h("location") == "http://www.example.com:8080/sub/?q"


def test_head(rt):
    g = fetch(rt, "/hello.txt", "HEAD")
    assert g.status == 200 and g.h("etag") and g.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_methods(rt, method):
    g = fetch(rt, "/hello.txt", method)
    assert g.status == 405 and g.h("allow") == "GET, HEAD"
    assert fetch(rt, "/sub/", method).status == 405
    assert fetch(rt, "/nope", method).status == 404


def test_no_fd_leak(rt):
    before = open_fds()
    for _ in range(20):
        fetch(rt, "/hello.txt")
        fetch(rt, "/hello.txt", "HEAD")
        fetch(rt, "/hello.txt", headers={"range": "bytes=0-1,3-4"})
        fetch(rt, "/hello.txt", headers={"if-none-match": "*"})
        fetch(rt, "/hello.txt", headers={"range": "bytes=100-"})
    assert open_fds() <= before + 2


# -- conditional and range requests -------------------------------------------------------------
def test_conditional(rt):
    g = fetch(rt, "/hello.txt")
    etag, lm = g.h("etag"), g.h("last-modified")
    n = fetch(rt, "/hello.txt", headers={"if-none-match": etag})
    assert n.status == 304 and n.body == b"" and n.h("etag") == etag
    assert n.h("content-type") is None
    assert fetch(rt, "/hello.txt", headers={"if-modified-since": lm}).status == 304
    assert fetch(rt, "/hello.txt", headers={"if-none-match": '"x"'}).status == 200
    assert fetch(rt, "/hello.txt", headers={"if-match": '"x"'}).status == 412
    assert fetch(rt, "/hello.txt", headers={"if-match": etag}).status == 200
    assert fetch(rt, "/hello.txt", "HEAD", headers={"if-none-match": etag}).status == 304


def test_ranges(rt):
    full = bytes(range(256)) * 4
    g = fetch(rt, "/data.bin", headers={"range": "bytes=0-3"})
    assert g.status == 206 and g.body == full[:4] and g.h("content-range") == "bytes 0-3/1024"
    g = fetch(rt, "/data.bin", headers={"range": "bytes=-4"})
    assert g.body == full[-4:] and g.h("content-range") == "bytes 1020-1023/1024"
    g = fetch(rt, "/data.bin", headers={"range": "bytes=1000-"})
    assert g.body == full[1000:]
    g = fetch(rt, "/data.bin", headers={"range": "bytes=2000-"})
    assert g.status == 416 and g.h("content-range") == "bytes */1024"
    g = fetch(rt, "/data.bin", headers={"range": "bytes=5-1"})
    assert g.status == 200 and g.body == full
    g = fetch(rt, "/data.bin", headers={"range": "bytes=0-1,10-11"})
    assert g.status == 206
    ctype = g.h("content-type")
    boundary = ctype.split("boundary=")[1]
    assert ctype.startswith("multipart/byteranges; boundary=")
    parts = g.body.split(b"--" + boundary.encode())
    assert len(parts) == 4 and parts[-1] == b"--\r\n"
    assert b"Content-Range: bytes 0-1/1024\r\n\r\n" + full[:2] + b"\r\n" in parts[1]
    assert b"Content-Range: bytes 10-11/1024\r\n\r\n" + full[10:12] + b"\r\n" in parts[2]
    assert b"Content-Type: application/octet-stream" in parts[1]


def test_if_range(rt):
    etag = fetch(rt, "/data.bin").h("etag")
    g = fetch(rt, "/data.bin", headers={"range": "bytes=0-3", "if-range": etag})
    assert g.status == 206
    g = fetch(rt, "/data.bin", headers={"range": "bytes=0-3", "if-range": '"stale"'})
    assert g.status == 200 and len(g.body) == 1024


def test_changed_file_gets_new_validators(tree):
    rt = runtime(f'<host><static dir="{tree}/www"/></host>')
    p = tree / "www" / "changing.txt"
    p.write_text("one")
    g1 = fetch(rt, "/changing.txt")
    p.write_text("three")
    os.utime(p, ns=(0, 1_000_000_000))
    g2 = fetch(rt, "/changing.txt")  # cached check, same inode: fresh fstat
    assert g2.body == b"three" and g2.h("etag") != g1.h("etag")
    p.unlink()
    p.write_text("replaced!")  # another inode: the cached check is redone
    assert fetch(rt, "/changing.txt").body == b"replaced!"
    p.unlink()
    assert fetch(rt, "/changing.txt").status == 404


def test_etag_modes(tree):
    weak = runtime(f'<host><static dir="{tree}/www" etag="weak"/></host>')
    g = fetch(weak, "/hello.txt")
    assert g.h("etag").startswith('W/"')
    assert fetch(weak, "/hello.txt", headers={"if-none-match": g.h("etag")}).status == 304
    off = runtime(f'<host><static dir="{tree}/www" etag="off" maxranges="0"/></host>')
    g = fetch(off, "/hello.txt", headers={"range": "bytes=0-1"})
    assert g.status == 200 and g.h("etag") is None and g.h("accept-ranges") == "none"


# -- cache attribute --------------------------------------------------------------------------------
def test_cache_attribute(tree):
    rt = runtime(f'<host><static dir="{tree}/www" cache="60"/></host>')
    g = fetch(rt, "/hello.txt")
    assert g.h("cache-control") == "max-age=60"
    from ocsi.http.dates import parse_http_date
    import time
    assert abs(parse_http_date(g.h("expires")) - (time.time() + 60)) < 3
    for value in ("0", "no"):
        rt = runtime(f'<host><static dir="{tree}/www" cache="{value}"/></host>')
        g = fetch(rt, "/hello.txt")
        assert g.h("cache-control") == "no-cache" and g.h("expires") == "0"
        assert fetch(rt, "/hello.txt", headers={"if-none-match": "*"}).h("cache-control") == "no-cache"


# -- precompressed siblings -------------------------------------------------------------------------
def test_precompressed(tree):
    rt = runtime(f'<host><static dir="{tree}/www" precompressed="br gzip"/></host>')
    plain = fetch(rt, "/style.css")
    assert plain.h("content-encoding") is None and plain.h("vary") == "Accept-Encoding"
    assert plain.body == b"body{}\n" * 100
    g = fetch(rt, "/style.css", headers={"accept-encoding": "gzip"})
    assert g.h("content-encoding") == "gzip" and gzip.decompress(g.body) == plain.body
    assert g.h("content-type") == "text/css; charset=utf-8"
    assert g.h("etag") != plain.h("etag") and g.h("etag").endswith('-gz"')
    b = fetch(rt, "/style.css", headers={"accept-encoding": "gzip, br"})
    assert b.h("content-encoding") == "br" and b.body == b"BROTLI"
    assert fetch(rt, "/style.css", headers={"accept-encoding": "zstd"}).h("content-encoding") is None
    assert fetch(rt, "/hello.txt", headers={"accept-encoding": "gzip"}).h("vary") is None
    n = fetch(rt, "/style.css", headers={"accept-encoding": "gzip", "if-none-match": g.h("etag")})
    assert n.status == 304 and n.h("vary") == "Accept-Encoding"
    off = runtime(f'<host><static dir="{tree}/www"/></host>')
    g = fetch(off, "/style.css", headers={"accept-encoding": "gzip, br"})
    assert g.h("content-encoding") is None and g.h("vary") is None


# -- listings, hide/forbid, index order ---------------------------------------------------------------
def test_listing(tree):
    rt = runtime(f'<host><listdirs value="true"/><hidefile><extension ext="php"/></hidefile>'
                 f'<static dir="{tree}/www"/></host>')
    g = fetch(rt, "/empty/")
    assert g.status == 200 and g.h("content-type") == "text/html; charset=utf-8"
    assert b"<title>Directory listing for /empty/</title>" in g.body and b"<ul></ul>" in g.body
    g = fetch(rt, "/main/")
    assert g.body == b"index\n"  # an index wins over the listing
    (tree / "www" / "empty" / "x.php").write_text("hidden")
    (tree / "www" / "empty" / "a&b").write_text("")
    try:
        g = fetch(rt, "/empty/")
        assert b'<li><a href="a%26b">a&amp;b</a></li>' in g.body and b"x.php" not in g.body
    finally:
        (tree / "www" / "empty" / "x.php").unlink()
        (tree / "www" / "empty" / "a&b").unlink()
    assert fetch(rt, "/empty/", "POST").status == 405


def test_listing_scoped_to_site(tree):
    rt = runtime(f'<host><site path="a"><listdirs value="true"/><static dir="{tree}/www"/></site>'
                 f'<site path="b"><static dir="{tree}/www"/></site></host>')
    assert fetch(rt, "/a/empty/").status == 200
    assert fetch(rt, "/b/empty/").status == 404


def test_hide_and_forbid(tree):
    rt = runtime(f'<host><hidefile><extension ext="php"/><file file=".git"/></hidefile>'
                 f'<forbidfile><file file=".htaccess"/></forbidfile>'
                 f'<static dir="{tree}/www"/></host>')
    assert fetch(rt, "/x.php").status == 404
    assert fetch(rt, "/.htaccess").status == 403
    assert fetch(rt, "/.git/config").status == 404  # hidden directory hides its content
    assert fetch(rt, "/hello.txt").status == 200


def test_defaultindex_order(tree):
    rt = runtime(f'<host><defaultindex><index>main.html</index><index>index.html</index>'
                 f'</defaultindex><static dir="{tree}/www"/></host>')
    assert fetch(rt, "/main/").body == b"main\n"
    assert fetch(rt, "/sub/").body == b"sub index\n"
    none = runtime(f'<host><defaultindex/><static dir="{tree}/www"/></host>')
    assert fetch(none, "/main/").status == 404


def test_contenttype_and_charset_rules(tree):
    rt = runtime(f'<host><contenttype default="text/x-default"><extension ext="txt" value="text/x-t"/>'
                 f'</contenttype><charset><extension ext="txt" value="latin1"/></charset>'
                 f'<static dir="{tree}/www"/></host>')
    assert fetch(rt, "/hello.txt").h("content-type") == "text/x-t; charset=latin1"
    assert fetch(rt, "/noext").h("content-type") == "text/x-default; charset=utf-8"
    assert fetch(rt, "/pic.png").h("content-type") == "image/png"


def test_host_and_site_charset(tree):
    rt = runtime(f'<host charset="iso-8859-1"><static dir="{tree}/www"/>'
                 f'</host>')
    assert fetch(rt, "/hello.txt").h("content-type") == "text/plain; charset=iso-8859-1"
    rt = runtime(f'<host><site path="s" charset=""><static dir="{tree}/www"/></site></host>')
    assert fetch(rt, "/s/hello.txt").h("content-type") == "text/plain"


def test_mimefile(tree, tmp_path):
    (tmp_path / "mime.types").write_text("# custom\ntext/x-foo foo\n")
    (tree / "www" / "a.foo").write_text("foo")
    rt = runtime(f'<mimefile>{tmp_path}/mime.types</mimefile><host><static dir="{tree}/www"/></host>')
    assert fetch(rt, "/a.foo").h("content-type") == "text/x-foo; charset=utf-8"


# -- symlinks --------------------------------------------------------------------------------------
def _policy(tree, policy):
    return runtime(f'<host><followsymlinks value="{policy}"/><static dir="{tree}/www"/></host>')


def test_symlink_policies(tree):
    assert fetch(_policy(tree, "never"), "/link-in").status == 403
    assert fetch(_policy(tree, "ownermatch"), "/link-in").body == b"hello\n"
    assert fetch(_policy(tree, "always"), "/link-in").body == b"hello\n"
    if owner_mismatch_possible():
        assert fetch(_policy(tree, "ownermatch"), "/link-out").status == 403
        assert fetch(_policy(tree, "ownermatch"), "/link-out-dir/secret.txt").status == 403
    assert fetch(_policy(tree, "always"), "/link-out").body == SECRET


def test_symlink_loop_is_404(tree):
    www = tree / "www"
    os.symlink("loop1", www / "loop2")
    os.symlink("loop2", www / "loop1")
    try:
        for policy in ("never", "ownermatch", "always"):
            assert fetch(_policy(tree, policy), "/loop1").status in (403, 404)
        assert fetch(_policy(tree, "always"), "/loop1").status == 404
    finally:
        (www / "loop1").unlink()
        (www / "loop2").unlink()


def test_eacces_is_403(tree, monkeypatch):
    import ocsi_ext_staticmod.resolve as resolve

    rt = runtime(f'<host><static dir="{tree}/www"/></host>')
    real_open = os.open

    def deny(path, *a, **kw):
        if str(path).endswith("hello.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    monkeypatch.setattr(resolve.os, "open", deny)
    assert fetch(rt, "/hello.txt").status == 403


def test_eacces_on_directory_is_403(tree):
    if os.getuid() == 0:
        pytest.skip("root ignores permissions")
    d = tree / "www" / "locked"
    d.mkdir()
    (d / "f").write_text("x")
    d.chmod(0)
    try:
        rt = runtime(f'<host><static dir="{tree}/www"/></host>')
        assert fetch(rt, "/locked/f").status == 403
    finally:
        d.chmod(0o755)


# -- attack table ----------------------------------------------------------------------------------
POLICIES = (["ownermatch"] if owner_mismatch_possible() else []) + ["never"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("target, what", ATTACKS, ids=[a[1] for a in ATTACKS])
def test_attack_table(tree, policy, target, what):
    rt = runtime(f'<host><followsymlinks value="{policy}"/><static dir="{tree}/www"/></host>')
    g = fetch(rt, target)
    assert g.status != 200 and SECRET not in g.body, (target, what, g.status)


@pytest.mark.parametrize("target, what", REGEXP_ATTACKS, ids=[a[1] for a in REGEXP_ATTACKS])
def test_regexp_attack_table(tree, target, what):
    policy = "ownermatch" if owner_mismatch_possible() else "never"
    rt = runtime(f'<host><followsymlinks value="{policy}"/>'
                 f'<static regexp="files/(.*)" dest="{tree}/www/\\1" root="{tree}/www"/>'
                 f'<static regexp="p(.*)" dest="{tree}/www\\1" root="{tree}/www"/></host>')
    g = fetch(rt, target)
    assert g.status != 200 and SECRET not in g.body, (target, what, g.status)


# -- regexp, code, userconf-like modes ---------------------------------------------------------------
def test_regexp_mode(tree):
    rt = runtime(f'<host><static regexp="img/(.*)" dest="{tree}/www/\\1"/>'
                 f'<static regexp="img" dest="{tree}/www/hello.txt"/></host>')
    assert fetch(rt, "/img/pic.png").body == b"\x89PNG...."
    assert fetch(rt, "/img/a%20b%281%29.txt").body == b"spaces\n"
    assert fetch(rt, "/img").body == b"hello\n"
    assert fetch(rt, "/imgx").status == 404  # anchored
    assert fetch(rt, "/x/img/pic.png").status == 404
    g = fetch(rt, "/img/sub")
    assert g.status == 301 and g.h("location") == "http://example.org/img/sub/"


def test_regexp_root_and_sibling(tree):
    rt = runtime(f'<host><static regexp="p(.*)" dest="{tree}/www\\1" root="{tree}/www"/></host>')
    assert fetch(rt, "/p/hello.txt").body == b"hello\n"
    assert fetch(rt, "/p2/secret.txt").status == 403


def test_user_dirs(tree, monkeypatch):
    import pwd
    from ocsi_ext_staticmod import dest

    home = tree / "home-alice"
    (home / "public_html").mkdir(parents=True)
    (home / "public_html" / "x").write_text("alice's")
    monkeypatch.setattr(dest, "home_of", lambda n: str(home) if n == "alice" else None)
    rt = runtime('<host><static regexp="~([^/]*)(.*)" dest="$u(\\1)/public_html\\2"/></host>')
    assert fetch(rt, "/~alice/x").body == b"alice's"
    assert fetch(rt, "/~bob/x").status == 404
    assert pwd  # keep import


def test_code_page(tree):
    rt = runtime(f'<host><static dir="{tree}/www"/>'
                 f'<static code="40." dest="{tree}/errors/404.html" cache="no"/></host>')
    g = fetch(rt, "/nope")
    assert g.status == 404 and g.body == b"custom 404\n"
    assert g.h("content-type") == "text/html; charset=utf-8" and g.h("cache-control") == "no-cache"
    assert fetch(rt, "/hello.txt").body == b"hello\n"
    assert fetch(rt, "/nope", "POST").status == 404
    g = fetch(rt, "/.git/config")  # not hidden here: served
    assert g.status == 200
    rt = runtime(f'<host><forbidfile><file file=".htaccess"/></forbidfile>'
                 f'<static dir="{tree}/www"/><static code="403" dest="{tree}/errors/404.html"/></host>')
    g = fetch(rt, "/.htaccess")
    assert g.status == 403 and g.body == b"custom 404\n"
    assert fetch(rt, "/nope").body == b"Error: Not Found"


def test_host_fallthrough_and_site_continue(tree):
    rt = runtime(f'<host><site path="s"><static dir="{tree}/www/sub"/></site>'
                 f'<static dir="{tree}/www"/></host>')
    assert fetch(rt, "/s/index.html").body == b"sub index\n"
    assert fetch(rt, "/s/hello.txt").status == 404  # nothing at www/s/hello.txt
    rt = runtime(f'<host><site path="sub"><static dir="{tree}/www/empty"/></site>'
                 f'<static dir="{tree}/www"/></host>')
    assert fetch(rt, "/sub/index.html").body == b"sub index\n"  # site misses, host level serves


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
    ('<static regexp="(a" dest="/x"/>', "not a valid regular expression"),
    ('<static regexp="(a)" dest="/x/\\2"/>', "group \\2"),
    ('<static regexp="a" dest="/x\\"/>', "lone backslash"),
    ('<static dir="/x">text</static>', "no text"),
])
def test_config_errors(element, message):
    with pytest.raises(ConfigError) as info:
        runtime(f"<host>{element}</host>")
    assert message in str(info.value)
    assert "test.conf:1" in str(info.value)


def test_extension_options(tree):
    with pytest.raises(ConfigError, match="unknown element <static>"):
        runtime(f'<host><static dir="{tree}/www"/></host>', extensions=())
    from ocsi.extensions.loader import new_plugin_manager
    from ocsi.runtime import build_configuration

    def build(opts):
        data = (f'<ocsigen><server><port>1</port><extension findlib-package="ocsi-ext-staticmod">'
                f'{opts}</extension><host><static dir="{tree}/www"/></host></server></ocsigen>')
        return build_configuration(new_plugin_manager(), "t.conf", data.encode())

    conf = build('<filecache ttl="0" entries="10"/>')
    step = conf.hosts[0].steps[0]
    assert step.cache.ttl == 0 and step.cache.max_entries == 10
    with pytest.raises(ConfigError, match="unknown option <bogus>"):
        build("<bogus/>")
    with pytest.raises(ConfigError, match="attribute 'ttl'"):
        build('<filecache ttl="soon"/>')


# -- user configuration files (userconf) -------------------------------------------------------------
def test_userconf_confinement(tree):
    from ocsi_ext_staticmod import Static, make_spec
    from ocsi.pipeline.engine import Host, Pipeline
    from ocsi.pipeline.scope import SiteConfig
    from staticmod_helpers import make_request
    import asyncio

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
    pipeline = Pipeline([Host([], [d, r, esc], SiteConfig())])

    async def get(target):
        resp = await pipeline.respond(make_request(target))
        body = b"".join([c async for c in resp.body.chunks()])
        await resp.body.aclose()
        return resp.status, body

    assert asyncio.run(get("/p.txt")) == (200, b"user page")
    assert asyncio.run(get("/u/p.txt")) == (200, b"user page")
    assert asyncio.run(get("/e/x"))[0] == 403


# -- Python API --------------------------------------------------------------------------------------
def test_python_constructor(tree):
    import asyncio

    from ocsi.pipeline.engine import Host, Pipeline, Site
    from ocsi.pipeline.scope import SiteConfig
    from ocsi_ext_staticmod import FileCache, static
    from staticmod_helpers import make_request

    steps = [Site(("s",), [static(dir=str(tree / "www"), cache="no", precompressed="gzip",
                                  file_cache=FileCache(ttl=0))]),
             static(code="404", dest=str(tree / "errors" / "404.html"))]
    pipeline = Pipeline([Host([], steps, SiteConfig())])

    async def get(target, **headers):
        resp = await pipeline.respond(make_request(target, headers=headers))
        body = b"".join([c async for c in resp.body.chunks()])
        await resp.body.aclose()
        return resp, body

    resp, body = asyncio.run(get("/s/hello.txt"))
    assert body == b"hello\n" and resp.headers.get("cache-control") == "no-cache"
    resp, body = asyncio.run(get("/s/style.css", **{"accept-encoding": "gzip"}))
    assert resp.headers.get("content-encoding") == "gzip"
    resp, body = asyncio.run(get("/s/nope"))
    assert resp.status == 404 and body == b"custom 404\n"
    for bad in [dict(), dict(dir="/x", regexp="a"), dict(regexp="a"), dict(dir="/x", etag="x"),
                dict(dir="/x", precompressed="lzw"), dict(regexp="(a", dest="/x")]:
        with pytest.raises(ValueError):
            static(**bad)
