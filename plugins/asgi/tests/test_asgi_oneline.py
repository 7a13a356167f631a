"""``ocsi app module:app``: an application served with no configuration, reloaded on edits."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from ocsi.testing import free_port, wait_for_port

SOURCE = ('async def app(scope, receive, send):\n'
          '    if scope["type"] != "http":\n'
          '        raise RuntimeError("no lifespan")\n'
          '    await send({{"type": "http.response.start", "status": 200, "headers": []}})\n'
          '    await send({{"type": "http.response.body", "body": b"{0}"}})\n')


def _get(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        return bytes(r.read())


def test_ocsi_app_with_reload(tmp_path):
    (tmp_path / "hello_app.py").write_text(SOURCE.format("first"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "app", "hello_app:app", "--port",
                             str(port), "--reload", "--app-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        assert _get(port) == b"first"
        (tmp_path / "hello_app.py").write_text(SOURCE.format("second edit"))
        deadline = time.monotonic() + 15
        while _get(port) != b"second edit" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _get(port) == b"second edit"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err


def test_ocsi_app_serves_wsgi_too(tmp_path):
    (tmp_path / "w_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'wsgi here']\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "app", "w_app:app", "--port", str(port),
                             "--app-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        assert _get(port) == b"wsgi here"
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_ocsi_app_refuses_what_it_cannot_load(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ocsi", "app", "nope_module:app", "--app-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot import 'nope_module'" in r.stderr
