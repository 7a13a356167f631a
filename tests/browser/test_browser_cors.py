"""Cross-origin ``fetch`` from a page on one origin to ``<static>`` (and an ``<asgi>``
application) + ``<cors>`` on another, as Chromium enforces it: simple requests, preflighted
ones, and an origin the list refuses."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .conftest import APPS, Browser, Served

DATA = {"items": [1, 2, 3]}


@pytest.fixture(scope="module")
def site(https_server: Callable[..., Served], tmp_path_factory: pytest.TempPathFactory) -> Served:
    pages, api = tmp_path_factory.mktemp("pages"), tmp_path_factory.mktemp("api")
    (pages / "index.html").write_text("<!doctype html><title>app</title><p>app</p>")
    (api / "data.json").write_text(json.dumps(DATA))
    return https_server(f"""
<extension findlib-package="ocsi-ext-staticmod"/>
<extension findlib-package="ocsi-ext-cors"/>
<findlib path="{APPS}"/><extension findlib-package="ocsi-ext-asgi"/>
<host hostfilter="api.test">
  <site path="app"><asgi app="browser_app:app"/></site>
  <static dir="{api}"/>
  <cors origins="https://app.test:{{https}}" max_age="600" methods="GET, POST"/>
</host>
<host><static dir="{pages}"/></host>""")


FETCH = """
    try {
        const r = await fetch(arguments[0], arguments[1]);
        return {status: r.status, body: await r.text()};
    } catch (e) {
        return {failed: String(e)};
    }"""


def _fetch(browser: Browser, url: str, init: dict[str, object] | None = None) -> dict[str, object]:
    result: dict[str, object] = browser.run(FETCH, url, init or {})
    return result


def test_a_simple_request_needs_no_preflight(browser: Browser, site: Served) -> None:
    browser.get(site.url("/"))
    got = _fetch(browser, site.url("/data.json", name="api.test"))
    assert got["status"] == 200 and json.loads(str(got["body"])) == DATA


def test_an_origin_off_the_list_cannot_read(browser: Browser, site: Served) -> None:
    browser.get(site.url("/", name="other.test"))
    got = _fetch(browser, site.url("/data.json", name="api.test"))
    assert got == {"failed": "TypeError: Failed to fetch"}


@pytest.mark.parametrize("header", ["X-Token", "Authorization"])
def test_a_preflighted_request(browser: Browser, site: Served, header: str) -> None:
    browser.get(site.url("/"))
    got = _fetch(browser, site.url("/data.json", name="api.test"), {"headers": {header: "t"}})
    assert got["status"] == 200 and json.loads(str(got["body"])) == DATA


def test_a_preflighted_request_to_an_application(browser: Browser, site: Served) -> None:
    browser.get(site.url("/"))
    got = _fetch(browser, site.url("/app/landed?from=x", name="api.test"), {"headers": {"X-Token": "t"}})
    assert got["status"] == 200 and "landed from x" in str(got["body"])
