"""<static> over real sockets: the ocsi_server fixture (a server thread on 127.0.0.1)."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from staticmod_attacks import ATTACKS, REGEXP_ATTACKS, SECRET, make_tree, owner_mismatch_possible

EXT = ('<extension findlib-package="ocsigenserver.ext.staticmod"/>'
       '<extension findlib-package="ocsigenserver.ext.extendconfiguration"/>')


def parse_responses(data: bytes, head_requests: set[int] = frozenset()) -> list[tuple[int, dict, bytes]]:
    """Split raw bytes into ``(status, headers, body)`` (Content-Length or chunked framing)."""
    out = []
    i = 0
    while data[i:]:
        end = data.index(b"\r\n\r\n", i)
        lines = data[i:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        i = end + 4
        body = b""
        if len(out) in head_requests or status in (204, 304):
            pass
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body = data[i : i + n]
            i += n
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                eol = data.index(b"\r\n", i)
                size = int(data[i:eol].split(b";")[0], 16)
                i = eol + 2
                if size == 0:
                    i = data.index(b"\r\n", i) + 2
                    break
                parts.append(data[i : i + size])
                i += size + 2
            body = b"".join(parts)
        out.append((status, headers, body))
    return out


@pytest.fixture
def www(tmp_path):
    base = tmp_path / "tree"
    base.mkdir()
    root = make_tree(base)
    (root / "index.html").write_text("<p>home</p>\n")
    (root / "a b(1).txt").write_text("spaces\n")
    (root / "style.css").write_text("body{}\n" * 200)
    (root / "style.css.gz").write_bytes(gzip.compress(b"body{}\n" * 200))
    (root / "empty").mkdir()
    (root / "x.php").write_text("<?php")
    (root / ".htaccess").write_text("deny")
    os.symlink("hello.txt", root / "link-in")
    big = os.urandom(3 * 1024 * 1024 + 17)
    (root / "big.bin").write_bytes(big)
    return root


def host(root: Path, before: str = "", attrs: str = "") -> str:
    return f'{EXT}<host hostfilter="*">{before}<static dir="{root}"{attrs}/></host>'


def test_files_and_framing(ocsi_server, www):
    srv = ocsi_server(host(www))
    r = srv.get("/hello.txt")
    assert r.status == 200 and r.body == b"hello\n"
    assert r.headers["Content-Length"] == "6" and r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Server"] == "Ocsigen" and r.headers["Date"]
    assert r.headers["ETag"] and r.headers["Last-Modified"] and r.headers["Accept-Ranges"] == "bytes"
    big = (www / "big.bin").read_bytes()
    r = srv.get("/big.bin")  # sendfile on a plain connection
    assert r.status == 200 and int(r.headers["Content-Length"]) == len(big)
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(big).digest()
    assert srv.get("/a%20b%281%29.txt").body == b"spaces\n"
    assert srv.get("/").body == b"<p>home</p>\n"
    r = srv.get("/nope")
    assert r.status == 404 and r.body == b"Error: Not Found"
    assert srv.get("/hello.txt/").status == 404
    assert srv.get("/" + "x" * 400).status == 404


def test_directory_redirect(ocsi_server, www):
    srv = ocsi_server(host(www))
    raw = srv.raw(b"GET /sub?a=1 HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")
    [(status, headers, _)] = parse_responses(raw)
    # no port in Host: the listening one, as Ocsigen and nginx put it
    assert status == 301 and headers["location"] == f"http://example.org:{srv.port}/sub/?a=1"
    raw = srv.raw(b"GET /sub HTTP/1.1\r\nHost: example.org:8080\r\nConnection: close\r\n\r\n")
    assert parse_responses(raw)[0][1]["location"] == "http://example.org:8080/sub/"
    assert srv.get("/empty/").status == 404


def test_decoded_names_inside_site(ocsi_server, www):
    srv = ocsi_server(f'{EXT}<host><site path="s"><static dir="{www}"/></site></host>')
    assert srv.get("/s/a%20b%281%29.txt").body == b"spaces\n"
    r = srv.get("/s")
    assert r.status == 301 and r.headers["Location"].endswith("/s/")
    assert srv.get("/s/").body == b"<p>home</p>\n"


def test_head_keeps_keepalive_in_sync(ocsi_server, www):
    srv = ocsi_server(host(www))
    raw = srv.raw(b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"HEAD /sub HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    rs = parse_responses(raw, head_requests={0, 1})
    assert [r[0] for r in rs] == [200, 301, 200]
    assert rs[0][1]["content-length"] == str(3 * 1024 * 1024 + 17)
    assert rs[2][2] == b"hello\n"


def test_conditional_and_ranges(ocsi_server, www):
    srv = ocsi_server(host(www))
    r = srv.get("/big.bin")
    etag, lm = r.headers["ETag"], r.headers["Last-Modified"]
    big = r.body
    r = srv.get("/big.bin", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b"" and r.headers["ETag"] == etag
    assert srv.get("/big.bin", headers={"If-Modified-Since": lm}).status == 304
    assert srv.get("/big.bin", headers={"If-Match": '"nope"'}).status == 412
    r = srv.get("/big.bin", headers={"Range": "bytes=0-3"})
    assert r.status == 206 and r.body == big[:4] and r.headers["Content-Range"] == f"bytes 0-3/{len(big)}"
    r = srv.get("/big.bin", headers={"Range": "bytes=-100"})
    assert r.body == big[-100:]
    r = srv.get("/big.bin", headers={"Range": "bytes=1000000-2000000"})
    assert r.body == big[1000000:2000001] and r.headers["Content-Length"] == "1000001"
    r = srv.get("/big.bin", headers={"Range": f"bytes={len(big)}-"})
    assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(big)}"
    r = srv.get("/big.bin", headers={"Range": "bytes=0-0,-1"})
    assert r.status == 206 and r.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert int(r.headers["Content-Length"]) == len(r.body)
    boundary = r.headers["Content-Type"].split("boundary=")[1].encode()
    assert r.body.endswith(b"--" + boundary + b"--\r\n")
    parts = _byteranges(r.headers["Content-Type"], r.body)
    assert parts == [(f"bytes 0-0/{len(big)}", big[:1]),
                     (f"bytes {len(big) - 1}-{len(big) - 1}/{len(big)}", big[-1:])]
    r = srv.get("/big.bin", headers={"Range": "bytes=0-3", "If-Range": etag})
    assert r.status == 206
    r = srv.get("/big.bin", headers={"Range": "bytes=0-3", "If-Range": '"old"'})
    assert r.status == 200 and len(r.body) == len(big)
    r = srv.head("/big.bin", headers={"Range": "bytes=0-3"})
    assert r.status == 206 and r.headers["Content-Length"] == "4" and r.body == b""


def test_methods(ocsi_server, www):
    srv = ocsi_server(host(www))
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = srv.request(method, "/hello.txt", body=b"x" if method in ("POST", "PUT") else None)
        assert r.status == 405 and r.headers["Allow"] == "GET, HEAD"
    assert srv.request("POST", "/nope", body=b"x").status == 404


def test_listing(ocsi_server, www):
    (www / "empty" / "a&b").write_text("")
    (www / "empty" / "d").mkdir()
    srv = ocsi_server(host(www, '<listdirs value="true"/><hidefile><extension ext="php"/></hidefile>'))
    r = srv.get("/empty/")
    assert r.status == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.body.startswith(b"<!DOCTYPE html>\n<html")
    assert b"<title>Directory listing for /empty/</title>" in r.body
    assert re.search(rb'<ul><li><a href="../">../</a></li><li><a href="a%26b">a&amp;b</a> <span '
                     rb'class="size">0</span> <time [^>]+>[^<]+</time></li><li><a href="d/">d/</a> '
                     rb'<span class="size">-</span> <time [^>]+>[^<]+</time></li></ul>', r.body)
    r = srv.get("/sub/")
    assert r.body == b"sub index\n"
    srv2 = ocsi_server(host(www))
    assert srv2.get("/empty/").status == 404


def test_hide_forbid_index(ocsi_server, www):
    (www / "sub" / "main.html").write_text("main\n")
    srv = ocsi_server(host(www, '<hidefile><extension ext="php"/></hidefile>'
                                '<forbidfile><file file=".htaccess"/></forbidfile>'
                                '<defaultindex><index>main.html</index><index>index.html</index></defaultindex>'))
    assert srv.get("/x.php").status == 404
    assert srv.get("/.htaccess").status == 403
    assert srv.get("/sub/").body == b"main\n"
    assert srv.get("/").body == b"<p>home</p>\n"


def test_symlink_policies(ocsi_server, www):
    never = ocsi_server(host(www, '<followsymlinks value="never"/>'))
    assert never.get("/link-in").status == 403
    owner = ocsi_server(host(www))
    assert owner.get("/link-in").body == b"hello\n"
    if owner_mismatch_possible():
        assert owner.get("/link-out").status == 403
    always = ocsi_server(host(www, '<followsymlinks value="always"/>'))
    assert always.get("/link-out").body == SECRET


def _byteranges(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """``(Content-Range, bytes)`` of each part of a multipart/byteranges body, read by the
    standard library's MIME parser."""
    import email
    import email.policy

    msg = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body,
                                   policy=email.policy.HTTP)
    assert msg.is_multipart()
    return [(part["Content-Range"], part.get_payload(decode=True)) for part in msg.iter_parts()]


def test_eacces_is_403(ocsi_server):
    if os.getuid() != 0:
        pytest.skip("needs root to switch the effective uid")
    d = Path(tempfile.mkdtemp(prefix="ocsi-eacces-"))
    try:
        d.chmod(0o755)
        (d / "locked.txt").write_text("x")
        (d / "locked.txt").chmod(0)
        (d / "open.txt").write_text("open")
        (d / "open.txt").chmod(0o644)
        srv = ocsi_server(f'{EXT}<host><static dir="{d}"/><static code="403" dest="{d}/open.txt"/></host>')
        "localhost".encode("idna")  # the codec getaddrinfo needs, imported while still root
        os.seteuid(65534)
        try:
            r1 = srv.get("/locked.txt")
            r2 = srv.get("/open.txt")
        finally:
            os.seteuid(0)
        assert r1.status == 403 and r1.body == b"open"  # the 403 reached the code= page
        assert r2.status == 200
    finally:
        shutil.rmtree(d)


def test_precompressed(ocsi_server, www):
    srv = ocsi_server(host(www, attrs=' precompressed="br zstd gzip"'))
    plain = srv.get("/style.css", headers={"Accept-Encoding": "identity"})
    r = srv.get("/style.css", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(r.body) == plain.body and plain.headers.get("Content-Encoding") is None
    assert r.headers["Content-Length"] == str((www / "style.css.gz").stat().st_size)


def test_code_page_and_cache(ocsi_server, www, tmp_path):
    page = tmp_path / "404.html"
    page.write_text("lost\n")
    srv = ocsi_server(f'{EXT}<host><static dir="{www}" cache="3600"/>'
                      f'<static code="404" dest="{page}"/></host>')
    r = srv.get("/hello.txt")
    assert r.headers["Cache-Control"] == "max-age=3600" and r.headers["Expires"].endswith("GMT")
    r = srv.get("/missing")
    assert r.status == 404 and r.body == b"lost\n" and r.headers["Content-Type"].startswith("text/html")


def test_regexp_mode(ocsi_server, www):
    srv = ocsi_server(f'{EXT}<host><static regexp="img/(.*)" dest="{www}/\\1"/></host>')
    assert srv.get("/img/hello.txt").body == b"hello\n"
    assert srv.get("/img").status == 404
    assert srv.get("/xx/img/hello.txt").status == 404


def test_clearcache_and_reload(ocsi_server, www):
    xml = (f'<extension findlib-package="ocsi-ext-staticmod"><filecache ttl="3600"/></extension>'
           f'<host><static dir="{www}"/></host>')
    srv = ocsi_server(xml)
    assert srv.get("/later.txt").status == 404  # negative answer cached for an hour
    (www / "later.txt").write_text("now")
    assert srv.get("/later.txt").status == 404
    srv.command("clearcache")
    assert srv.get("/later.txt").body == b"now"
    assert srv.get("/later2.txt").status == 404
    (www / "later2.txt").write_text("two")
    srv.reload(xml)
    assert srv.get("/later2.txt").body == b"two"


def _status_line(raw: bytes) -> int:
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else 0


POLICIES = (["ownermatch"] if owner_mismatch_possible() else []) + ["never"]


@pytest.mark.parametrize("policy", POLICIES)
def test_attack_table_over_sockets(ocsi_server, tmp_path, policy):
    (tmp_path / "t").mkdir()
    root = make_tree(tmp_path / "t")
    srv = ocsi_server(f'{EXT}<host><followsymlinks value="{policy}"/><static dir="{root}"/></host>')
    seen = {}
    for target, what in ATTACKS:
        raw = srv.raw(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status = _status_line(raw)
        seen[target] = status
        assert SECRET not in raw, (target, what)
        assert status != 200, (target, what, raw[:200])
    # raw bytes a client library would never send: backslashes, NUL and non-ASCII in the target
    for target in [b"/..\\secret.txt", b"/..\\..\\secret.txt", b"/\xc0\xae\xc0\xae/secret.txt",
                   b"/hello.txt\x00", b"/../secret.txt#frag", b"/%2e%2e\\secret.txt"]:
        raw = srv.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert SECRET not in raw and _status_line(raw) != 200, (target, raw[:200])
    assert srv.get("/hello.txt").body == b"hello\n"  # the server still serves


def test_regexp_attack_table_over_sockets(ocsi_server, tmp_path):
    (tmp_path / "t").mkdir()
    root = make_tree(tmp_path / "t")
    policy = "ownermatch" if owner_mismatch_possible() else "never"
    srv = ocsi_server(f'{EXT}<host><followsymlinks value="{policy}"/>'
                      f'<static regexp="files/(.*)" dest="{root}/\\1" root="{root}"/>'
                      f'<static regexp="p(.*)" dest="{root}\\1" root="{root}"/></host>')
    for target, what in REGEXP_ATTACKS:
        raw = srv.raw(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert SECRET not in raw and _status_line(raw) != 200, (target, what, raw[:200])
    assert srv.get("/files/hello.txt").body == b"hello\n"
    assert srv.get("/p/hello.txt").body == b"hello\n"


def test_no_descriptor_leak(ocsi_server, www):
    import socket

    srv = ocsi_server(host(www, attrs=' precompressed="gzip"'))
    etag = srv.get("/big.bin").headers["ETag"]

    def fds():
        return len(os.listdir("/proc/self/fd"))

    srv.get("/hello.txt")
    before = fds()
    for _ in range(10):
        srv.head("/big.bin")
        srv.get("/big.bin", headers={"If-None-Match": etag})
        srv.get("/big.bin", headers={"Range": "bytes=0-1,5-6"})
        srv.head("/big.bin", headers={"Range": "bytes=0-1,5-6"})
        srv.get("/big.bin", headers={"Range": "bytes=99999999-"})
        srv.get("/style.css", headers={"Accept-Encoding": "gzip"})
        srv.request("POST", "/hello.txt", body=b"x")
        # a client that goes away in the middle of a large body
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
        s.close()
    deadline = time.monotonic() + 5
    while fds() > before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fds() <= before + 1
