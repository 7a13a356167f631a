"""A Starlette application as a browser uses it: through ``<asgi>`` (a form with a file upload,
a WebSocket over ``wss``), and through ``<revproxy>`` to another server running it (a
WebSocket passed on, a redirect whose ``Location`` ``<outputfilter>`` makes public)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ocsi.testing import RunningServer

from .conftest import APPS, Browser, Served, log_lines

APP = f'<findlib path="{APPS}"/><extension findlib-package="ocsi-ext-asgi"/>'


@pytest.fixture(scope="module")
def backend(module_server: Callable[..., RunningServer]) -> RunningServer:
    """The application alone on plain HTTP, as behind a proxy."""
    server: RunningServer = module_server(f'{APP}<host><asgi app="browser_app:app"/></host>')
    return server


@pytest.fixture(scope="module")
def site(https_server: Callable[..., Served], backend: RunningServer) -> Served:
    back = f"http://127.0.0.1:{backend.port}"
    return https_server(f"""{APP}
<extension findlib-package="ocsi-ext-revproxy"/>
<extension findlib-package="ocsi-ext-outputfilter"/>
<host>
  <site path="app"><asgi app="browser_app:app"/></site>
  <site path="proxied">
    <revproxy suburl="(.*)" dest="{back}/\\1"/>
    <outputfilter header="location" regexp="{back}/(.*)" dest="https://app.test:{{https}}/proxied/\\1"/>
  </site>
</host>""")


def test_a_form_with_a_file_upload(browser: Browser, site: Served, tmp_path: Path) -> None:
    content = os.urandom(300_000)  # more than one read on every hop
    doc = tmp_path / "report 2026.bin"
    doc.write_bytes(content)
    browser.get(site.url("/app/form"))
    browser.driver.find_element("id", "title").send_keys("Quarterly é")
    browser.driver.find_element("id", "doc").send_keys(str(doc))
    browser.driver.find_element("id", "send").click()
    browser.wait_title("received")
    assert browser.url == site.url("/app/upload")
    got = {k: browser.driver.find_element("id", k).text for k in ("title", "file", "size", "sha256")}
    assert got == {"title": "Quarterly é", "file": "report 2026.bin", "size": "300000",
                   "sha256": hashlib.sha256(content).hexdigest()}


ECHO = """
    const ws = new WebSocket(arguments[0]);
    ws.binaryType = 'arraybuffer';
    const next = () => new Promise((ok, ko) => {
        ws.onmessage = e => ok(e.data);
        ws.onerror = () => ko(new Error('WebSocket error'));
        ws.onclose = e => ko(new Error('closed ' + e.code));
    });
    await new Promise((ok, ko) => { ws.onopen = ok; ws.onerror = () => ko(new Error('no connection')); });
    let reply = next();
    ws.send('héllo');
    const text = await reply;
    const big = new Uint8Array(200000).map((_, i) => i % 251);
    reply = next();
    ws.send(big);
    const back = new Uint8Array(await reply);
    const reversed = back.length === big.length && back.every((b, i) => b === big[big.length - 1 - i]);
    const closed = new Promise(ok => { ws.onclose = e => ok(e.code); });
    ws.close(1000, 'bye');
    return {text: text, reversed: reversed, closed: await closed};"""


@pytest.mark.parametrize("path", ["/app/ws", "/proxied/ws"], ids=["asgi", "revproxy"])
def test_a_websocket_over_wss(browser: Browser, site: Served, backend: RunningServer,
                              path: str) -> None:
    browser.get(site.url("/app/form"))
    got = browser.run(ECHO, site.url(path).replace("https:", "wss:"))
    assert got == {"text": "echo: héllo", "reversed": True, "closed": 1000}
    assert log_lines(site.server, f"{path} 101", 1)
    if path.startswith("/proxied"):
        assert log_lines(backend, "/ws 101", 1)  # the proxy's handshake with the application


def test_a_redirect_behind_the_proxy_made_public(browser: Browser, site: Served,
                                                 backend: RunningServer) -> None:
    browser.get(site.url("/proxied/go"))
    assert browser.url == site.url("/proxied/landed?from=go")
    assert browser.text() == "landed from go"
    # without the rewrite the browser would have gone to the backend's own address
    assert backend.get("/go").headers["location"] == f"http://127.0.0.1:{backend.port}/landed?from=go"
