"""``ocsi proxy --to …``: a proxy with no configuration file, run as a user runs it, in front of
real backends (the h11 test backend, Python's ``http.server``)."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ocsi.testing import free_port, parse_element, wait_for_port
from ocsi_ext_revproxy.oneline import listen_address, proxy_document

HERE = Path(__file__).parent


@pytest.fixture
def python_backend(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """``python_backend(*args)``: a Python program listening on the port it returns (``{port}``
    in ``args``), stopped at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> int:
        port = free_port()
        proc = subprocess.Popen([sys.executable, *(a.replace("{port}", str(port)) for a in args)],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_for_port(port, proc)
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def _post_chunked(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        pieces = [body[i:i + 10000] for i in range(0, len(body), 10000)]
        conn.request("POST", path, body=iter(pieces), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("text, expected", [
    (":8080", ("0.0.0.0", 8080)), ("8080", ("0.0.0.0", 8080)), ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("[::1]:8443", ("::1", 8443)), ("*:80", ("0.0.0.0", 80)),
])
def test_from_addresses(text, expected):
    assert listen_address(text) == expected


@pytest.mark.parametrize("text", ["", "host", ":0", ":99999", "a:b"])
def test_bad_from_addresses(text):
    with pytest.raises(ValueError):
        listen_address(text)


def test_the_document_it_runs():
    doc = proxy_document(["127.0.0.1:9000", "https://b.example/app/"], insecure=True)
    el = parse_element(doc.document()).children[0].children[-1].children[0]
    assert el.tag == "revproxy"
    assert el.attrs == {"suburl": "(.*)", "dest": "http://127.0.0.1:9000/\\1 https://b.example/app/\\1",
                        "insecure": "insecure", "rewritelocation": "rewritelocation",
                        "requestbuffer": "8MB"}
    assert "<port>127.0.0.1:8080</port>" in doc.document()
    kept = proxy_document(["127.0.0.1:9000"], keep_host=True, rewrite_location=False,
                          request_buffer=None).document()
    assert 'keephost="keephost"' in kept and "rewritelocation" not in kept and "requestbuffer" not in kept
    with pytest.raises(ValueError):
        proxy_document(["ftp://x/"])


def test_ocsi_proxy_forwards(ocsi_command, backend):
    b1, b2 = backend("b1"), backend("b2")
    srv = ocsi_command(["proxy", "--port", "{port}", "--to", b1.url, "--to", b2.url])
    names = []
    for _ in range(4):
        info = json.loads(srv.get("/echo/x?q=1").body)
        assert info["target"] == "/echo/x?q=1"
        names.append(info["backend"])
    assert sorted(names) == ["b1", "b1", "b2", "b2"]
    assert srv.stop() == 0
    assert "/echo/x 200" in srv.output()[0]  # the access log on the terminal


def test_the_old_from_spelling(ocsi_command, backend):
    b = backend()
    srv = ocsi_command(["proxy", "--from", "127.0.0.1:{port}", "--to", b.url])
    assert srv.get("/echo").status == 200


def test_redirects_come_back_to_the_proxy(ocsi_command, backend):
    b = backend()
    srv = ocsi_command(["proxy", "--port", "{port}", "--to", b.url])
    r = srv.get("/redirect")
    assert r.status == 302 and r.headers["Location"] == f"http://127.0.0.1:{srv.port}/moved"
    r = srv.get("/redirect", host="front.example")
    assert r.headers["Location"] == "http://front.example/moved"
    info = json.loads(srv.get("/echo").body)
    assert dict(info["headers"])["host"] == f"127.0.0.1:{b.port}"  # the backend's own Host
    plain = ocsi_command(["proxy", "--port", "{port}", "--to", b.url, "--no-rewrite-location"])
    assert plain.get("/redirect").headers["Location"] == f"http://127.0.0.1:{b.port}/moved"


def test_keep_host(ocsi_command, backend):
    b = backend()
    srv = ocsi_command(["proxy", "--port", "{port}", "--to", b.url, "--keep-host"])
    info = json.loads(srv.get("/echo", host="front.example:81").body)
    assert dict(info["headers"])["host"] == "front.example:81"


def test_chunked_body_reaches_an_http10_backend(ocsi_command, python_backend):
    """Python's http.server reads bodies by Content-Length: a chunked body arrived empty."""
    port = python_backend(str(HERE / "http10_backend.py"), "{port}")
    srv = ocsi_command(["proxy", "--port", "{port}", "--to", f"http://127.0.0.1:{port}"])
    for size in (5, 300_000, 3_000_000):  # in memory; spooled to a file; bigger than both
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        status, data = _post_chunked(srv.port, "/upload", body)
        assert status == 200, data
        info = json.loads(data)
        assert info["length"] == size and info["content-length"] == str(size)
        assert info["sha256"] == hashlib.sha256(body).hexdigest() and info["transfer-encoding"] is None
    r = srv.get("/refresh")
    assert r.headers["Refresh"] == f"0; url=http://127.0.0.1:{srv.port}/moved"


def test_a_body_over_the_buffer_is_413(ocsi_command, python_backend):
    port = python_backend(str(HERE / "http10_backend.py"), "{port}")
    srv = ocsi_command(["proxy", "--port", "{port}", "--to", f"http://127.0.0.1:{port}",
                        "--request-buffer", "64KiB"])
    status, _ = _post_chunked(srv.port, "/upload", b"y" * 60_000)
    assert status == 200
    status, _ = _post_chunked(srv.port, "/upload", b"y" * 70_000)
    assert status == 413


def test_python_http_server_behind_it(ocsi_command, python_backend, tmp_path):
    (tmp_path / "hello.txt").write_text("from http.server")
    port = python_backend("-m", "http.server", "--bind", "127.0.0.1", "{port}")
    srv = ocsi_command(["proxy", "--port", "{port}", "--to", f"127.0.0.1:{port}"])
    assert srv.get("/hello.txt").body == b"from http.server"


def test_errors_name_what_was_typed(backend):
    b = backend()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for listen, typed in ((["--port", str(port)], f"--port {port}"),
                              (["--from", f"127.0.0.1:{port}"], f"--from 127.0.0.1:{port}")):
            r = subprocess.run([sys.executable, "-m", "ocsi", "proxy", *listen, "--to", b.url],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 9
            assert f"cannot listen on http://127.0.0.1:{port} ({typed}): Address already in use" in r.stderr
    r = subprocess.run([sys.executable, "-m", "ocsi", "proxy", "--port", str(free_port()), "--to",
                        b.url, "--request-buffer", "lots"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 50 and r.stderr.startswith(f"ocsi: Fatal - --to {b.url} --request-buffer lots: ")
    assert "<proxy>" not in r.stderr


def test_ocsi_proxy_refuses_a_bad_target():
    r = subprocess.run([sys.executable, "-m", "ocsi", "proxy", "--to", "gopher://x/"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "is not an http:// or https:// URL" in r.stderr
    r = subprocess.run([sys.executable, "-m", "ocsi", "proxy", "--from", ":1", "--port", "2",
                        "--to", "http://x/"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--from" in r.stderr
