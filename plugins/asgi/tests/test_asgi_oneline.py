"""``ocsi app module:app``: an application served with no configuration, reloaded on edits."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from ocsi_ext_asgi.oneline import app_document

SOURCE = ('async def app(scope, receive, send):\n'
          '    if scope["type"] != "http":\n'
          '        raise RuntimeError("no lifespan")\n'
          '    await send({{"type": "http.response.start", "status": 200, "headers": []}})\n'
          '    await send({{"type": "http.response.body", "body": b"{0}"}})\n')


def _wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:g} s"
        time.sleep(0.1)


def test_the_document_it_runs(tmp_path):
    (tmp_path / "doc_app.py").write_text(SOURCE.format("x"))
    doc = app_document("doc_app:app", wsgi=None, factory=False, path=str(tmp_path))
    text = doc.document()
    assert "<port>127.0.0.1:8080</port>" in text and '<asgi app="doc_app:app"/>' in text
    assert f'<findlib path="{tmp_path}"/>' in text


def test_ocsi_app_with_reload(ocsi_command, tmp_path):
    source = tmp_path / "hello_app.py"
    source.write_text(SOURCE.format("first"))
    srv = ocsi_command(["app", "hello_app:app", "--port", "{port}", "--reload", "--app-dir",
                        str(tmp_path)], cwd=tmp_path)
    assert srv.get("/").body == b"first"
    # a broken edit: said with the file's line, no hint about where modules are looked for;
    # the previous code keeps serving
    source.write_text(SOURCE.format("second") + "def broken(:\n")
    _wait_for(lambda: "SyntaxError" in srv.output()[1], "the SyntaxError")
    assert srv.get("/").body == b"first"
    source.write_text(SOURCE.format("second edit"))
    _wait_for(lambda: srv.get("/").body == b"second edit", "the edit")
    assert srv.stop() == 0
    out, err = srv.output()
    assert "hello_app.py changed: re-importing the application" in out  # notices: stdout
    assert "ocsi app: reloaded" in out
    assert "invalid syntax (hello_app.py, line 6)" in err  # errors: stderr
    err = out + err
    assert "<findlib path>" not in err and "Reloading config file" not in err
    assert "Configuration changed on disk" not in err


def test_ocsi_app_serves_wsgi_too(ocsi_command, tmp_path):
    (tmp_path / "w_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'wsgi here']\n")
    srv = ocsi_command(["app", "w_app:app", "-P", "{port}", "--bind", "127.0.0.1", "--app-dir",
                        str(tmp_path)])
    assert srv.get("/").body == b"wsgi here"


def test_ocsi_app_refuses_what_it_cannot_load(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ocsi", "app", "nope_module:app", "--app-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot import 'nope_module'" in r.stderr


def test_a_busy_port_names_the_option(tmp_path):
    (tmp_path / "busy_app.py").write_text(SOURCE.format("x"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "ocsi", "app", "busy_app:app", "--port", str(port),
                            "--app-dir", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 9
    assert f"cannot listen on http://127.0.0.1:{port} (--port {port}): Address already in use" in r.stderr
    assert "<app>" not in r.stderr
