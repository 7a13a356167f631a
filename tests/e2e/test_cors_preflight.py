"""A CORS preflight meets whatever the steps before ``<cors>`` answered to ``OPTIONS``.

Browsers send ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method`` before a
cross-origin request with a custom header or method, and only go on when the answer is a 2xx
carrying the CORS fields. Generators answer ``OPTIONS`` in their own way (staticmod's 405, a
redirect, an application's 405 or its own 200), so ``<cors>`` decides the preflight whatever
came before it: accepted, an empty 200; refused, never anything that looks accepted.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

STATIC = '<extension findlib-package="ocsigenserver.ext.staticmod"/>'
CORS = '<extension findlib-package="ocsigenserver.ext.cors"/>'
PREFLIGHT = {"Origin": "http://a.test", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "Authorization"}


@pytest.fixture
def www(tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.json").write_text('{"a": 1}')
    return root


def accepted(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status == 200, (r.status, r.body)
    assert r.body == b"" and r.headers["content-length"] == "0"
    assert r.headers["access-control-allow-origin"] == "http://a.test"
    assert r.headers["access-control-allow-methods"] == "GET"
    assert r.headers["access-control-allow-headers"] == "Authorization"
    assert r.headers["access-control-max-age"] == "600"
    assert "allow" not in r.headers  # nothing of staticmod's 405 is left
    assert "Origin" in r.headers.get_all("vary")


def refused(r) -> None:  # type: ignore[no-untyped-def]
    assert not 200 <= r.status < 300, r.status
    assert not [n for n, _ in r.headers.items() if n.startswith("access-control-")]


def test_a_preflight_to_an_existing_static_file(ocsi_client, www):
    srv = ocsi_client(STATIC + CORS + f'<host hostfilter="*"><static dir="{www}"/>'
                      '<cors max_age="600" methods="GET, POST"/></host>')
    accepted(srv.request("OPTIONS", "/data.json", headers=PREFLIGHT))
    accepted(srv.request("OPTIONS", "/missing.json", headers=PREFLIGHT))
    # the request the preflight announced
    r = srv.get("/data.json", {"Origin": "http://a.test", "Authorization": "Bearer x"})
    assert r.status == 200 and r.headers["access-control-allow-origin"] == "http://a.test"
    # a plain OPTIONS (no preflight) still gets staticmod's answer
    assert srv.request("OPTIONS", "/data.json").status == 405


def test_a_refused_preflight_to_an_existing_file_does_not_look_accepted(ocsi_client, www):
    srv = ocsi_client(STATIC + CORS + f'<host><static dir="{www}"/>'
                      '<cors origins="http://b.test" max_age="600"/></host>')
    refused(srv.request("OPTIONS", "/data.json", headers=PREFLIGHT))
    srv = ocsi_client(STATIC + CORS + f'<host><static dir="{www}"/>'
                      '<cors methods="POST" max_age="600"/></host>')
    refused(srv.request("OPTIONS", "/data.json", headers=PREFLIGHT))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_sees_a_2xx(ocsi_server, www):
    srv = ocsi_server(STATIC + CORS + f'<host hostfilter="*"><static dir="{www}"/>'
                      '<cors max_age="600" methods="GET, POST"/></host>')
    out = subprocess.run(
        ["curl", "-si", "-X", "OPTIONS", f"{srv.url}/data.json", "-H", "Origin: http://a.test",
         "-H", "Access-Control-Request-Method: GET",
         "-H", "Access-Control-Request-Headers: Authorization"],
        capture_output=True, timeout=10, check=True).stdout.decode()
    assert out.startswith("HTTP/1.1 200"), out
    assert "access-control-allow-origin: http://a.test" in out.lower()


def test_a_preflight_to_a_redirect(ocsi_client):
    srv = ocsi_client('<extension findlib-package="ocsigenserver.ext.redirectmod"/>' + CORS +
                      '<host><redirect suburl="old/(.*)" dest="/new/\\1"/>'
                      '<cors max_age="600"/></host>')
    assert srv.get("/old/x").status == 301
    accepted(srv.request("OPTIONS", "/old/x", headers=PREFLIGHT))


def test_a_preflight_through_the_proxy(ocsi_server, www):
    backend = ocsi_server(STATIC + f'<host><static dir="{www}"/></host>')
    assert backend.request("OPTIONS", "/data.json", headers=PREFLIGHT).status == 405
    srv = ocsi_server('<extension findlib-package="ocsigenserver.ext.revproxy"/>' + CORS +
                      f'<host><revproxy suburl="(.*)" dest="http://127.0.0.1:{backend.port}/\\1"/>'
                      '<cors max_age="600"/></host>')
    accepted(srv.request("OPTIONS", "/data.json", headers=PREFLIGHT))
    accepted(srv.request("OPTIONS", "/data.json", headers=PREFLIGHT))  # the connection is reusable
    assert srv.get("/data.json").body == b'{"a": 1}'


APP = textwrap.dedent('''
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/own"):  # an application doing CORS its own, permissive way
            headers = [(b"access-control-allow-origin", b"*"),
                       (b"access-control-allow-headers", b"*")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        status = 405 if scope["method"] == "OPTIONS" else 200
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"answer"})
''')


def test_a_preflight_to_an_application(ocsi_server, tmp_path):
    (tmp_path / "corsapp.py").write_text(APP)
    asgi = f'<findlib path="{tmp_path}"/><extension findlib-package="ocsi-ext-asgi"/>'
    srv = ocsi_server(asgi + CORS + '<host><asgi app="corsapp:app"/>'
                      '<cors origins="http://a.test" max_age="600"/></host>')
    accepted(srv.request("OPTIONS", "/x", headers=PREFLIGHT))
    accepted(srv.request("OPTIONS", "/own", headers=PREFLIGHT))
    # refused by <cors>: the application's own permissive 200 must not get through
    evil = dict(PREFLIGHT, Origin="http://evil.test")
    r = srv.request("OPTIONS", "/own", headers=evil)
    refused(r)
    assert r.status == 403
    refused(srv.request("OPTIONS", "/x", headers=evil))
    assert srv.get("/x").body == b"answer"
