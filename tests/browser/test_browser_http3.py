"""HTTP/3 in a real browser: Chromium, forced onto QUIC for the test origin, loads a page and a
script's fetch over ``h3`` from a server whose HTTPS port says ``http3="true"``, with the
development certificate its NSS database trusts (no certificate error is ignored)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsi.testing import RunningServer, free_port

from .conftest import CHROMIUM_FLAGS, TIMEOUT, Browser, DevCert, log_lines

pytest.importorskip("aioquic")


@pytest.fixture(scope="module")
def h3_site(module_server, devcert: DevCert,  # type: ignore[no-untyped-def]
            tmp_path_factory: pytest.TempPathFactory) -> tuple[RunningServer, int]:
    www = tmp_path_factory.mktemp("www")
    (www / "index.html").write_text("<!doctype html><title>h3</title><p>Over QUIC</p>")
    (www / "data.txt").write_text("d" * 100_000)
    port = free_port()
    server = module_server(
        f'<ocsigen><server><port protocol="HTTPS" http3="true">127.0.0.1:{port}</port>'
        f"{devcert.ssl()}<logdir>{{tmp}}/log</logdir><commandpipe>{{tmp}}/ocsi.cmd</commandpipe>"
        "<accesslogformat>json</accesslogformat>"
        '<extension findlib-package="ocsi-ext-staticmod"/>'
        f'<host><static dir="{www}"/></host></server></ocsigen>', full=True)
    return server, port


@pytest.fixture(scope="module")
def quic_browser(devcert: DevCert, h3_site: tuple[RunningServer, int],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A Chromium told that app.test on the server's port speaks QUIC (it then skips TCP and
    Alt-Svc discovery for that origin)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _, port = h3_site
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (*CHROMIUM_FLAGS, "--enable-quic", f"--origin-to-force-quic-on=app.test:{port}"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('profile')}")
    service = Service(executable_path=shutil.which("chromedriver"),
                      env={**os.environ, "HOME": str(devcert.home)})
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(TIMEOUT)
    driver.set_script_timeout(TIMEOUT)
    try:
        yield Browser(driver)
    finally:
        driver.quit()


def test_chromium_loads_a_page_and_a_fetch_over_h3(quic_browser: Browser,
                                                   h3_site: tuple[RunningServer, int]) -> None:
    server, port = h3_site
    quic_browser.get(f"https://app.test:{port}/")
    assert quic_browser.text() == "Over QUIC"
    assert quic_browser.navigation()["nextHopProtocol"] == "h3"
    got = quic_browser.run("const r = await fetch('/data.txt');"
                           "const t = await r.text();"
                           "const e = performance.getEntriesByName(r.url)[0];"
                           "return [r.status, t.length, e.nextHopProtocol];")
    assert got == [200, 100_000, "h3"]
    lines = log_lines(server, '"/data.txt"', 1)
    assert lines and '"protocol": "HTTP/3"' in lines[0]
