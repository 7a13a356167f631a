"""A real browser against real servers: headless Chromium driven by Selenium.

Chromium trusts ``ocsi cert dev``'s authority the way a developer's browser does: the
authority goes into an NSS database (``certutil``) under a HOME of the test session, and
Chromium is started with that HOME. It never gets ``--ignore-certificate-errors``: a
certificate ocsi serves must verify. The names under ``.test`` the certificate is issued for
resolve to 127.0.0.1 inside the browser (``--host-resolver-rules``), so origins differ by name
as on the web, not only by port.

What it takes (Debian): ``chromium``, ``chromium-driver`` and ``libnss3-tools``; the tests
are skipped, with the reason, when one is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ocsi.testing import RunningServer, _servers, free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

#: The names ``ocsi cert dev`` signs besides localhost; each is an origin of its own.
NAMES = ("app.test", "api.test", "other.test", "hsts.test")
APPS = str(Path(__file__).parent / "apps")

#: Every wait in the browser is bounded: a page load, a script, an element.
TIMEOUT = 15

#: Flags that keep a headless Chromium quiet and local: no sandbox (containers, root), no GPU,
#: no first-run and no calls home (the network outside loopback is closed, and Chromium
#: stalls trying to reach its services without these).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--no-proxy-server",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
)


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    needs = {"chromium": "chromium", "chromedriver": "chromium-driver", "certutil": "libnss3-tools"}
    absent = [package for program, package in needs.items() if shutil.which(program) is None]
    if absent:
        return f"the browser tests need Debian's {', '.join(absent)} (apt-get install {' '.join(absent)})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the browser tests need selenium (pip install -r requirements-dev.txt)"
    return None


@dataclass
class DevCert:
    """``ocsi cert dev``'s output: the certificate and key a server uses, and the HOME whose
    NSS database trusts the authority that signed them."""

    cert: Path
    key: Path
    home: Path

    def ssl(self) -> str:
        return f"<ssl><certificate>{self.cert}</certificate><privatekey>{self.key}</privatekey></ssl>"


@pytest.fixture(scope="session", autouse=True)
def _browser_installed() -> None:
    """Every browser test is skipped, before any server starts, where Chromium is missing."""
    reason = _missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def devcert(tmp_path_factory: pytest.TempPathFactory) -> DevCert:
    root = tmp_path_factory.mktemp("devcert")
    home = root / "home"
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}
    subprocess.run([sys.executable, "-m", "ocsi", "cert", "dev", *NAMES, "--out", str(root / "certs")],
                   env=env, check=True, capture_output=True, timeout=60)
    authority = home / ".local" / "share" / "ocsi" / "dev-ca" / "ocsi-dev-ca.crt"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    for args in (["-N", "--empty-password"],
                 ["-A", "-t", "C,,", "-n", "ocsi development CA", "-i", str(authority)]):
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", *args], check=True, capture_output=True,
                       timeout=30)
    return DevCert(root / "certs" / "ocsi-dev.crt", root / "certs" / "ocsi-dev.key", home)


class Browser:
    """The Selenium driver and the few calls the tests make with it."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver

    def get(self, url: str) -> None:
        self.driver.get(url)

    @property
    def url(self) -> str:
        return str(self.driver.current_url)

    def wait_title(self, title: str) -> None:
        """Until the page's title is ``title``: the driver does not wait for a navigation
        that a click starts."""
        from selenium.webdriver.support.expected_conditions import title_is

        self._wait(title_is(title))

    def wait_url(self, url: str) -> None:
        """Until the page is the one at ``url`` (a page without a title)."""
        from selenium.webdriver.support.expected_conditions import url_to_be

        self._wait(url_to_be(url))

    def _wait(self, condition: Callable[[Any], Any]) -> None:
        from selenium.webdriver.support.wait import WebDriverWait

        WebDriverWait(self.driver, TIMEOUT).until(condition)

    def text(self) -> str:
        """The page's visible text."""
        return str(self.driver.find_element("tag name", "body").text)

    def run(self, body: str, *args: Any) -> Any:
        """The value of an async JavaScript function body in the page (``args`` as
        ``arguments``); a rejected promise becomes ``{"error": "…"}``."""
        script = ("const done = arguments[arguments.length - 1];"
                  f"(async function () {{ {body} }}).apply(null, Array.from(arguments).slice(0, -1))"
                  ".then(v => done({value: v}), e => done({error: String(e)}));")
        result = self.driver.execute_async_script(script, *args)
        return result.get("value") if "value" in result else result

    def navigation(self) -> dict[str, Any]:
        """The page's navigation timing entry (``performance.getEntries()[0]``): the protocol,
        content coding, sizes and status of the page as the browser received it."""
        entry: dict[str, Any] = json.loads(self.driver.execute_script(
            "return JSON.stringify(performance.getEntriesByType('navigation')[0])"))
        return entry


@pytest.fixture(scope="module")
def browser(devcert: DevCert, module_server: Callable[..., RunningServer],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A headless Chromium with a fresh profile for each module (what one module's pages
    taught it, HSTS or credentials, does not leak into the next). It quits before the
    module's servers stop: Chromium keeps idle HTTP/2 connections it never reads from, so a
    server stopping under it would wait its whole grace period for them to close."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('profile')}")
    env = {**os.environ, "HOME": str(devcert.home)}
    service = Service(executable_path=shutil.which("chromedriver"), env=env)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(TIMEOUT)
    driver.set_script_timeout(TIMEOUT)
    try:
        yield Browser(driver)
    finally:
        driver.quit()


def log_lines(server: RunningServer, needle: str, count: int, timeout: float = 5.0) -> list[str]:
    """The access log's lines holding ``needle``, once there are ``count`` of them (or after
    ``timeout``): a line is written when its answer is over, after the browser saw it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in server.log().splitlines() if needle in line]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@dataclass
class Served:
    """A running server and its ports: ``https`` always, ``http`` when asked for."""

    server: RunningServer
    https: int
    http: int | None

    def url(self, path: str = "/", name: str = "app.test") -> str:
        return f"https://{name}:{self.https}{path}"

    def plain_url(self, path: str = "/", name: str = "app.test") -> str:
        return f"http://{name}:{self.http}{path}"


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunningServer]]:
    """``start(xml, full=False)``: ``ocsi_server`` for the whole module (one server serves
    several scenarios, as it would serve several pages); every server stopped at its end."""
    yield from _servers(tmp_path_factory.mktemp("servers"), "srv", RunningServer, RunningServer.stop)


@pytest.fixture(scope="module")
def https_server(module_server: Callable[..., RunningServer],
                 devcert: DevCert) -> Callable[..., Served]:
    """``start(inner, plain=False)``: a server for the whole module on an HTTPS port with the
    development certificate (and a plain HTTP port with ``plain``); ``inner`` is the rest
    of ``<server>`` (``{tmp}`` is the server's directory, ``{https}`` and ``{http}`` its
    ports)."""

    def start(inner: str, plain: bool = False) -> Served:
        https, http = free_port(), (free_port() if plain else None)
        ports = f'<port protocol="HTTPS">127.0.0.1:{https}</port>'
        if http is not None:
            ports += f"<port>127.0.0.1:{http}</port>"
        inner = inner.replace("{https}", str(https)).replace("{http}", str(http))
        doc = (f"<ocsigen><server>{ports}{devcert.ssl()}<logdir>{{tmp}}/log</logdir>"
               f"<commandpipe>{{tmp}}/ocsi.cmd</commandpipe>{inner}</server></ocsigen>")
        return Served(module_server(doc, full=True), https, http)

    return start
