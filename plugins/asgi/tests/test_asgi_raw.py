"""A raw ASGI application: the scope, every message, the failures; in memory and over sockets."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from conftest import EXT
from ocsi import ConfigError


def serve(start: Callable[..., Any], extra: str = "", site: str = "app") -> Any:
    return start(EXT + f'<host><site path="{site}"><asgi app="raw_app:app"/>{extra}</site></host>')


def test_the_scope(ocsi_client):
    srv = serve(ocsi_client)
    r = srv.get("/app/scope?x=%41&y", {"X-Test": "1"}, host="h.example")
    info = json.loads(r.body)
    assert info["type"] == "http" and info["http_version"] == "1.1" and info["method"] == "GET"
    assert info["path"] == "/app/scope" and info["root_path"] == "/app"
    assert info["raw_path"] == "/app/scope" and info["query_string"] == "x=%41&y"
    assert info["scheme"] == "http" and info["client"][0] == "127.0.0.1"
    assert ["x-test", "1"] in info["headers"] and ["host", "h.example"] in info["headers"]
    assert info["state"] == {"greeting": "hello from lifespan"}


def test_decoded_path_and_raw_path(ocsi_client):
    srv = serve(ocsi_client)
    info = json.loads(srv.get("/app/scope").body)
    assert info["path"] == "/app/scope"
    r = srv.get("/app/a%20b")
    assert r.status == 404  # fell through: nothing after the app


def test_request_bodies_are_streamed(ocsi_client):
    srv = serve(ocsi_client)
    r = srv.request("POST", "/app/echo", body=b"z" * 1_000_000)
    total, _, pieces = r.text.partition(" in ")
    assert total == "1000000" and int(pieces) >= 1


def test_streamed_responses_and_pathsend(ocsi_client):
    srv = serve(ocsi_client)
    r = srv.get("/app/stream/10")
    assert (r.status, len(r.body), r.chunked, r.headers["x-s"]) == (200, 655360, True, "1")
    r = srv.get("/app/file")
    assert r.status == 200 and b"A raw ASGI 3 application" in r.body


def test_a_404_lets_the_following_steps_answer(ocsi_client):
    ext = EXT + '<extension findlib-package="ocsi-ext-redirectmod"/>'
    srv = ocsi_client(ext + '<host><site path="app"><asgi app="raw_app:app"/>'
                            '<redirect suburl="(.*)" dest="/moved/\\1"/></site></host>')
    r = srv.get("/app/unknown")
    assert (r.status, r.headers["location"]) == (301, "/moved/unknown")
    srv = ocsi_client(EXT + '<host><asgi app="raw_app:app" fallthrough="false"/></host>')
    assert (srv.get("/unknown").status, srv.get("/unknown").body) == (404, b"app 404")


@pytest.mark.parametrize("path", ["/app/raise", "/app/nothing", "/app/twice"])
def test_a_broken_application_is_a_clean_500(ocsi_server, path):
    srv = serve(ocsi_server)
    r = srv.get(path)
    assert (r.status, r.body) == (500, b"Error: Internal Server Error")
    assert srv.get("/app/scope").status == 200  # the server carries on
    errors = srv.wait_log("errors", "raw_app:app")
    assert "raw_app:app" in errors


def test_failing_mid_answer_aborts_the_connection(ocsi_server):
    import http.client

    srv = serve(ocsi_server)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/app/raise-mid")
    r = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    assert "broke in the middle" in srv.wait_log("errors", "broke in the middle")


def test_lifespan_runs_around_the_configuration(ocsi_server):
    srv = serve(ocsi_server)
    raw_app = sys.modules["raw_app"]
    assert raw_app.STARTED[-1:] == ["startup"]
    srv.stop()
    assert raw_app.STARTED[-1] == "shutdown"


def test_errors_are_located(ocsi_memory):
    for element, message in (('<asgi app="nosuchmodule:app"/>', "cannot import 'nosuchmodule'"),
                             ('<asgi app="raw_app:missing"/>', "has no attribute 'missing'"),
                             ('<asgi app="raw_app"/>', "write package.module:attribute"),
                             ('<asgi/>', "missing attribute 'app'")):
        with pytest.raises(ConfigError) as e:
            ocsi_memory(EXT + f"<host>\n{element}</host>")
        assert message in str(e.value).replace("Missing", "missing"), element


def test_eliom_is_refused_with_a_way_out(ocsi_memory):
    with pytest.raises(ConfigError) as e:
        ocsi_memory('<extension findlib-package="eliom.server"/>')
    assert "Eliom" in str(e.value) and "<asgi" in e.value.hint


def test_a_failed_startup_aborts_the_load_and_a_reload_keeps_the_running_one(ocsi_server, ocsi_memory):
    with pytest.raises(Exception, match="the application's startup failed: no database"):
        ocsi_memory(EXT + '<host><asgi app="failing_start:app"/></host>')
    srv = ocsi_server(EXT + '<host><asgi app="raw_app:app"/></host>')
    srv.reload(EXT + '<host><asgi app="failing_start:app"/></host>')
    assert "startup failed: no database" in srv.wait_log("errors", "no database")
    assert srv.get("/scope").status == 200  # still the running configuration
    assert srv.server.reloads == 0


def test_reloads_under_load_swap_applications_without_a_failed_request(ocsi_server, tmp_path):
    import threading
    import http.client

    mod = tmp_path / "swap_app.py"
    source = ('async def app(scope, receive, send):\n'
              '    if scope["type"] != "http":\n'
              '        raise RuntimeError("no lifespan")\n'
              '    await send({{"type": "http.response.start", "status": 200, "headers": []}})\n'
              '    await send({{"type": "http.response.body", "body": b"{0}"}})\n')
    mod.write_text(source.format("v0"))
    xml = (f'<findlib path="{tmp_path}"/><extension findlib-package="ocsi-ext-asgi"/>'
           '<host><asgi app="swap_app:app"/></host>')
    srv = ocsi_server(xml)
    seen: list[object] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        for _ in range(60):
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                seen.append((r.status, r.read()))
            except Exception as exc:  # noqa: BLE001
                seen.append(exc)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(1, 4):
        mod.write_text(source.format(f"v{i}"))
        srv.reload(xml)
    for t in threads:
        t.join(30)
    assert len(seen) == 180 and all(isinstance(s, tuple) and s[0] == 200 for s in seen), \
        [s for s in seen if not isinstance(s, tuple) or s[0] != 200][:3]
    assert {s[1] for s in seen} <= {b"v0", b"v1", b"v2", b"v3"}  # type: ignore[index]  # tuples: asserted above
    assert srv.get("/").body == b"v3"


def test_trailers_when_the_client_asks_for_them(ocsi_client):
    srv = ocsi_client(EXT + '<host><asgi app="raw_app:trailers_app"/></host>')
    out = srv.raw(b"GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert body == b"3\r\nabc\r\n3\r\ndef\r\n0\r\nX-Checksum: sum-1\r\n\r\n"
    out = srv.raw(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"3\r\ndef\r\n0\r\n\r\n")  # not asked for: dropped


def test_a_client_leaving_before_the_answer_is_an_http_disconnect(ocsi_server):
    import socket
    import time

    srv = serve(ocsi_server)
    raw_app = sys.modules["raw_app"]
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET /app/long-poll HTTP/1.1\r\nHost: h\r\n\r\n")
        deadline = time.monotonic() + 5
        while "polling" not in raw_app.STARTED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "polling" in raw_app.STARTED
    deadline = time.monotonic() + 5  # the application hears of it without answering first
    while "long-poll http.disconnect" not in raw_app.STARTED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "long-poll http.disconnect" in raw_app.STARTED
    assert srv.get("/app/scope").status == 200


def test_an_answer_after_some_turns_of_the_loop_with_its_framing_fields_replaced(ocsi_client):
    srv = serve(ocsi_client)
    out = srv.raw(b"GET /app/later HTTP/1.1\r\nHost: h\r\n\r\n"
                  b"GET /app/later HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    answers = out.split(b"HTTP/1.1 200 ")
    assert len(answers) == 3  # the application's Connection: close did not end the first one
    head, _, body = answers[1].partition(b"\r\n\r\n")
    assert body == b"hello" and b"Content-Length: 5" in head and b"X-A: 1" in head
    assert b"chunked" not in head and b"close" not in head


def test_the_end_of_the_answer_is_an_http_disconnect(ocsi_server):
    import time

    srv = serve(ocsi_server)
    raw_app = sys.modules["raw_app"]
    raw_app.STARTED.clear()
    assert srv.get("/app/disconnect").body == b"done"
    deadline = time.monotonic() + 5
    while "http.disconnect" not in raw_app.STARTED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "http.disconnect" in raw_app.STARTED


def test_a_streamed_404_is_drained_when_the_following_steps_answer(ocsi_server):
    import time

    ext = EXT + '<extension findlib-package="ocsi-ext-redirectmod"/>'
    srv = ocsi_server(ext + '<host><site path="app"><asgi app="raw_app:app"/>'
                            '<redirect suburl="(.*)" dest="/moved/\\1"/></site></host>')
    raw_app = sys.modules["raw_app"]
    raw_app.STARTED.clear()
    r = srv.get("/app/stream-404")
    assert (r.status, r.headers["location"]) == (301, "/moved/stream-404")
    deadline = time.monotonic() + 5  # the application was not left blocked on its pieces
    while "stream-404 done" not in raw_app.STARTED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "stream-404 done" in raw_app.STARTED


def test_a_client_leaving_in_the_middle_of_a_stream_fails_the_next_send(ocsi_server):
    import socket
    import time

    srv = serve(ocsi_server)
    raw_app = sys.modules["raw_app"]
    raw_app.STARTED.clear()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET /app/endless HTTP/1.1\r\nHost: h\r\n\r\n")
        received = 0
        while received < 1_000_000:  # well into the stream, then gone
            chunk = s.recv(65536)
            assert chunk
            received += len(chunk)
    deadline = time.monotonic() + 5  # not left blocked on a piece nobody will take
    while "endless: the client has gone" not in raw_app.STARTED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "endless: the client has gone" in raw_app.STARTED
    assert srv.get("/app/scope").status == 200


def test_http2_requests_are_named_as_the_specifications_say() -> None:
    import asyncio

    from ocsi_ext_asgi.http import http_scope
    from ocsi_ext_asgi.wsgi import wsgi_environ

    from ocsi.testing import make_request

    request = make_request(version="2.0", secure=True)
    assert http_scope(request, None)["http_version"] == "2"

    async def environ() -> dict[str, Any]:
        return wsgi_environ(request, asyncio.get_running_loop(), "here", False)
    assert asyncio.run(environ())["SERVER_PROTOCOL"] == "HTTP/2"
