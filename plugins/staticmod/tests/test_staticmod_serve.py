"""Serve mode: the document serve_config() builds, run by ``python -m ocsi`` as a subprocess."""

from __future__ import annotations

import os

from ocsi.testing import parse_element
from ocsi_ext_staticmod import serve_config


def test_serve_config_shape(tmp_path):
    xml = serve_config(str(tmp_path), 8080, False)
    root = parse_element(xml)
    server = root.children[0]
    assert [c.tag for c in server.children] == ["port", "extension", "host"]
    assert server.children[0].text == "8080"
    static = server.children[2].children[0]
    assert static.tag == "static" and static.get("dir") == str(tmp_path)
    xml = serve_config("rel/dir", 81, True, "0.0.0.0", commandpipe="/tmp/p")
    assert "<port>0.0.0.0:81</port>" in xml and "<commandpipe>/tmp/p</commandpipe>" in xml
    assert '<listdirs value="true"/>' in xml and "ocsi-ext-extendconfiguration" in xml
    assert f'dir="{os.path.abspath("rel/dir")}"' in xml
    assert "<port>[::1]:82</port>" in serve_config(".", 82, False, "::1")
    odd = parse_element(serve_config("/a&b\"c<'", 1, False))
    assert odd.children[0].children[2].children[0].get("dir") == "/a&b\"c<'"


def _doc(directory, listing):
    xml = serve_config(str(directory), 65000, listing, "127.0.0.1")
    return xml.replace("127.0.0.1:65000<", "127.0.0.1:{port}<")


def test_serve_mode_subprocess(ocsi_process, tmp_path):
    www = tmp_path / "www"
    (www / "d").mkdir(parents=True)
    (www / "index.html").write_text("served\n")
    proc = ocsi_process(_doc(www, listing=False), full=True)
    assert proc.get("/index.html").body == b"served\n"
    assert proc.get("/").body == b"served\n"
    assert proc.get("/d/").status == 404
    listing = ocsi_process(_doc(www, listing=True), full=True)
    r = listing.get("/d/")
    assert r.status == 200 and b"Directory listing for /d/" in r.body
