"""``ocsi proxy --from … --to …``: a proxy with no configuration file, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from ocsi.testing import free_port, wait_for_port
from ocsi_ext_revproxy.oneline import listen_address, proxy_config


@pytest.mark.parametrize("text, expected", [
    (":8080", "8080"), ("8080", "8080"), ("127.0.0.1:8080", "127.0.0.1:8080"),
    ("[::1]:8443", "[::1]:8443"), ("*:80", "80"),
])
def test_listen_addresses(text, expected):
    assert listen_address(text) == expected


@pytest.mark.parametrize("text", ["", "host", ":0", ":99999", "a:b"])
def test_bad_listen_addresses(text):
    with pytest.raises(ValueError):
        listen_address(text)


def test_the_configuration_it_runs():
    xml = proxy_config(":8080", ["127.0.0.1:9000", "https://b.example/app/"], insecure=True)
    assert '<revproxy suburl="(.*)" dest="http://127.0.0.1:9000/\\1 https://b.example/app/\\1" ' \
           'insecure="insecure"/>' in xml
    with pytest.raises(ValueError):
        proxy_config(":8080", ["ftp://x/"])


def test_ocsi_proxy_forwards(backend, tmp_path):
    b1, b2 = backend("b1"), backend("b2")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ocsi", "proxy", "--from", f"127.0.0.1:{port}",
                             "--to", b1.url, "--to", b2.url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        names = []
        for _ in range(4):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/echo/x?q=1", timeout=10) as r:
                info = json.loads(r.read())
                assert info["target"] == "/echo/x?q=1"
                names.append(info["backend"])
        assert sorted(names) == ["b1", "b1", "b2", "b2"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert b"/echo/x 200" in out  # the access log on the terminal (Ocsigen logs the path)


def test_ocsi_proxy_refuses_a_bad_target():
    r = subprocess.run([sys.executable, "-m", "ocsi", "proxy", "--to", "gopher://x/"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "is not an http:// or https:// URL" in r.stderr
