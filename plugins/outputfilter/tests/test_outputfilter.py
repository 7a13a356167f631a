"""<outputfilter> and <sethttpcode> on pages staticmod serves: in memory and over sockets."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ocsi.testing import assert_config_error

EXTS = ('<extension findlib-package="ocsi-ext-staticmod"/>'
        '<extension findlib-package="ocsi-ext-outputfilter"/>')


@pytest.fixture
def www(tmp_path: Path) -> Any:
    d = tmp_path / "www"
    (d / "sub").mkdir(parents=True)
    (d / "page.txt").write_text("page")
    (d / "sub" / "index.html").write_text("sub")
    return d


def serve(start: Callable[..., Any], www: Any, filters: str) -> Any:
    return start(EXTS + f'<host><static dir="{www}"/>{filters}</host>')


def test_rewriting_a_location_as_the_revproxy_page_does(ocsi_client, www):
    srv = serve(ocsi_client, www, '<outputfilter header="location" regexp="http://[^/]*/(.*)" '
                                  'dest="https://public.example/\\1"/>')
    r = srv.get("/sub?q=1")
    assert (r.status, r.headers["location"]) == (301, "https://public.example/sub/?q=1")


def test_every_match_in_every_value(ocsi_client, www):
    srv = serve(ocsi_client, www, '<outputfilter header="x-a" dest="one-one" replace="false"/>'
                                  '<outputfilter header="x-a" dest="one" replace="false"/>'
                                  '<outputfilter header="x-a" regexp="o(n)e" dest="tw\\1"/>')
    assert srv.get("/page.txt").headers.get_all("x-a") == ["twn-twn", "twn"]


def test_adding_a_header_in_the_three_modes(ocsi_client, www):
    srv = serve(ocsi_client, www,
                '<outputfilter header="content-type" dest="text/x-never"/>'   # present: kept
                '<outputfilter header="x-frame-options" dest="SAMEORIGIN"/>'  # absent: added
                '<outputfilter header="etag" dest="&quot;mine&quot;" replace="true"/>'
                '<outputfilter header="cache-control" dest="no-store" replace="false"/>'
                '<outputfilter header="cache-control" dest="private" replace="false"/>')
    h = srv.get("/page.txt").headers
    assert h["content-type"] == "text/plain; charset=utf-8"
    assert h["x-frame-options"] == "SAMEORIGIN"
    assert h.get_all("etag") == ['"mine"']
    assert h.get_all("cache-control") == ["no-store", "private"]


def test_sethttpcode(ocsi_client, www):
    srv = serve(ocsi_client, www, '<sethttpcode code="418"/>')
    r = srv.get("/page.txt")
    assert (r.status, r.body) == (418, b"page")
    assert srv.get("/missing").status == 404  # nothing found: nothing to filter


def test_a_filter_before_the_content_does_nothing(ocsi_client, www):
    srv = ocsi_client(EXTS + f'<host><outputfilter header="x-early" dest="1"/>'
                             f'<static dir="{www}"/></host>')
    assert "x-early" not in srv.get("/page.txt").headers


@pytest.mark.parametrize("element, message", [
    ('<outputfilter header="x" regexp="a" dest="b" replace="true"/>', "replace= goes with adding"),
    ('<outputfilter dest="b"/>', "missing attribute 'header'"),
    ('<outputfilter header="x"/>', "missing attribute 'dest'"),
    ('<outputfilter header="bad name" dest="b"/>', "is not a header name"),
    ('<outputfilter header="x" regexp="(" dest="b"/>', "bad regular expression"),
    ('<outputfilter header="x" regexp="(a)" dest="\\2"/>', "refers to group 2"),
    ('<outputfilter header="x" dest="b" replace="maybe"/>', "attribute 'replace'"),
    ('<sethttpcode code="999"/>', "Invalid code attribute in <sethttpcode>"),
    ('<sethttpcode code="abc"/>', "Invalid code attribute in <sethttpcode>"),
    ('<sethttpcode code="101"/>', "Invalid code attribute in <sethttpcode>"),
    ('<sethttpcode/>', "missing attribute 'code'"),
])
def test_errors_are_located(ocsi_memory, www, element, message):
    error = assert_config_error(ocsi_memory, EXTS + f"<host>\n{element}</host>", "", line=2)
    assert message in str(error).replace("Missing", "missing")


def test_from_python(ocsi_memory, www):
    from ocsi.embed import host
    from ocsi_ext_outputfilter import outputfilter, sethttpcode
    from ocsi_ext_staticmod import static

    srv = ocsi_memory([host(static(dir=str(www)), outputfilter("x-py", "yes"), sethttpcode(203))])
    r = srv.get("/page.txt")
    assert (r.status, r.headers["x-py"]) == (203, "yes")
    with pytest.raises(ValueError):
        sethttpcode(1000)
    with pytest.raises(ValueError):
        outputfilter("x", "v", regexp="a", replace=True)


@pytest.fixture
def echoing_backend() -> Iterator[Any]:
    """A backend that redirects to its own address + the request's path, as sent."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(302)
            self.send_header("Location", "http://backend.internal" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.mark.parametrize("target, location", [
    ("/\\evil.example/x", "/%5Cevil.example/x"),
    ("/ok/x", "/ok/x"),
])
def test_a_rewritten_location_names_no_other_host(ocsi_server, echoing_backend, target, location):
    srv = ocsi_server('<extension findlib-package="ocsi-ext-revproxy"/>'
                      '<extension findlib-package="ocsi-ext-outputfilter"/>'
                      f'<host><revproxy suburl="(.*)" dest="http://127.0.0.1:{echoing_backend}/\\1"/>'
                      '<outputfilter header="location" regexp="http://backend\\.internal(.*)" '
                      'dest="\\1"/></host>')
    r = srv.raw(f"GET {target} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n".encode())
    assert f"\r\nLocation: {location}\r\n".encode() in r, r
