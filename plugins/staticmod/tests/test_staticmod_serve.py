"""``ocsi serve DIR``, run as a user runs it (``python -m ocsi serve …`` on a free port)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
from ocsi.testing import parse_element
from ocsi_ext_staticmod import serve_document


@pytest.fixture
def www(tmp_path):
    www = tmp_path / "www"
    (www / "sub" / "deeper").mkdir(parents=True)
    (www / "index.html").write_text("<html>hello</html>")
    (www / "sub" / "notes.txt").write_text("some notes " * 100)
    (www / ".env").write_text("SECRET=1")
    (www / ".git").mkdir()
    (www / ".git" / "config").write_text("[core]")
    (www / "sub" / ".hidden.txt").write_text("x")
    return www


def test_the_document_it_runs(tmp_path):
    doc = serve_document(str(tmp_path))
    root = parse_element(doc.document())
    server = root.children[0]
    assert [c.tag for c in server.children] == ["port", "extension", "extension", "extension", "host"]
    assert server.children[0].text == "127.0.0.1:8080"
    assert [c.tag for c in server.children[4].children] == ["hidefile", "listdirs", "static", "deflate"]
    bare = serve_document(str(tmp_path), listing=False, show_hidden=True, compress=False)
    host = parse_element(bare.document()).children[0].children[-1]
    assert [c.tag for c in host.children] == ["static"]
    odd = parse_element(serve_document("/a&b\"c<'", listing=False, compress=False).document())
    assert odd.children[0].children[-1].children[-1].get("dir") == "/a&b\"c<'"


def test_defaults_list_hide_and_compress(ocsi_command, www):
    srv = ocsi_command(["serve", str(www), "--port", "{port}"])
    assert srv.get("/").body == b"<html>hello</html>"
    # dotfiles and dot-directories do not exist, nor are they listed
    for path in ("/.env", "/.git/config", "/.git/", "/sub/.hidden.txt"):
        assert srv.get(path).status == 404, path
    listing = srv.get("/sub/")
    assert listing.status == 200
    page = listing.text
    assert "notes.txt" in page and ".hidden" not in page
    assert '<a href="../">../</a>' in page  # the parent
    assert re.search(r"notes\.txt</a> <span class=\"size\">1100</span>", page)
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">\d{4}-\d\d-\d\d \d\d:\d\d</time>', page)
    assert '<a href="deeper/">deeper/</a> <span class="size">-</span>' in page
    # text is compressed for a client that takes gzip
    r = srv.get("/sub/notes.txt", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("Content-Encoding") == "gzip" and r.decoded() == b"some notes " * 100
    assert srv.stop() == 0
    out, _ = srv.output()
    assert "/sub/notes.txt 200" in out  # access lines on the terminal


def test_flags_show_hidden_and_no_listing(ocsi_command, www):
    srv = ocsi_command(["serve", str(www), "--port", "{port}", "--show-hidden", "--no-listing",
                        "--no-compress"])
    assert srv.get("/.env").body == b"SECRET=1"
    assert srv.get("/sub/").status == 404
    r = srv.get("/sub/notes.txt", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and "Content-Encoding" not in r.headers


def test_old_spellings_still_work(ocsi_command, www):
    srv = ocsi_command(["serve", str(www), "-P", "{port}", "--bind", "127.0.0.1", "--listing"])
    assert srv.get("/index.html").status == 200 and srv.get("/sub/").status == 200


def test_ocsigen_serve_form(ocsi_command, www):
    """``ocsi DIR --port N``: Ocsigen's form, through the same command; listings only with
    ``--directory-listing``, as in Ocsigen."""
    srv = ocsi_command([str(www), "--port", "{port}"])
    assert srv.get("/").body == b"<html>hello</html>"
    assert srv.get("/sub/").status == 404 and srv.get("/.env").status == 404
    listing = ocsi_command(["--serve", str(www), "--port", "{port}", "--directory-listing"])
    assert listing.get("/sub/").status == 200


def test_a_busy_port_names_the_option(www):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "ocsi", "serve", str(www), "--port", str(port)],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 9
    assert f"cannot listen on http://127.0.0.1:{port} (--port {port}): Address already in use" in r.stderr
    assert "<serve>" not in r.stderr


def test_bad_arguments(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "ocsi", *args], capture_output=True,
                              text=True, timeout=30)
    r = run("serve", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no such directory" in r.stderr
    (tmp_path / "f").write_text("x")
    r = run("serve", str(tmp_path / "f"))
    assert r.returncode == 2 and "is not a directory" in r.stderr
    r = run("serve", str(tmp_path), "--port", "99999")
    assert r.returncode == 2 and "not a port number" in r.stderr


def test_a_directory_inside_a_dot_directory_is_served(ocsi_command, tmp_path):
    """Only names below the served directory are hidden, not the directories above it."""
    root = tmp_path / ".config" / "site"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    (root / "sub" / ".b").write_text("b")
    srv = ocsi_command(["serve", str(root), "--port", "{port}"])
    assert srv.get("/sub/a.txt").body == b"a" and srv.get("/sub/.b").status == 404
    assert "a.txt" in srv.get("/sub/").text
