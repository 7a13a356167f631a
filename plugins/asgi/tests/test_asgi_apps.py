"""Real applications: Starlette (ASGI) and Flask (WSGI), a raw WSGI app, WebSockets, reloads."""

from __future__ import annotations

import json
import sys
import threading
import time

from ocsi.testing import WebSocketClient
from conftest import EXT
from wsproto.events import (AcceptConnection, CloseConnection, RejectConnection, RejectData,
                            TextMessage)


def test_starlette_routes_streaming_lifespan(ocsi_client):
    srv = ocsi_client(EXT + '<host><site path="api"><asgi app="star_app:app"/></site></host>')
    info = json.loads(srv.get("/api/?q=1").body)
    assert info == {"path": "/api/", "root": "/api", "db": "connected", "q": "1"}
    r = srv.get("/api/stream")
    assert r.body == b"".join(f"chunk {i}\n".encode() for i in range(5)) and r.chunked
    assert srv.request("POST", "/api/upload", body=b"u" * 300_000).body == b"300000"
    assert "startup" in sys.modules["star_app"].EVENTS


def WS(port: int, target: str, protocols: list[str] | None = None) -> WebSocketClient:  # noqa: N802
    return WebSocketClient(port, target, host="h", subprotocols=protocols or ())


def test_starlette_websocket(ocsi_server):
    srv = ocsi_server(EXT + '<host><site path="api"><asgi app="star_app:app"/></site></host>')
    c = WS(srv.port, "/api/ws")
    assert any(isinstance(e, AcceptConnection) for e in c.events(AcceptConnection))
    c.sock.sendall(c.ws.send(TextMessage(data="hi")))
    assert [e.data for e in c.events(TextMessage) if isinstance(e, TextMessage)] == ["echo: hi"]
    c.sock.sendall(c.ws.send(CloseConnection(code=1000)))
    c.events(CloseConnection)
    c.sock.close()


def test_raw_websocket_messages_subprotocol_close_and_denial(ocsi_server):
    srv = ocsi_server(EXT + '<host><asgi app="raw_app:app"/></host>')
    c = WS(srv.port, "/ws", ["chat"])
    accepted = [e for e in c.events(AcceptConnection) if isinstance(e, AcceptConnection)]
    assert accepted and accepted[0].subprotocol == "chat"
    c.sock.sendall(c.ws.send(TextMessage(data="abc")))
    assert [e.data for e in c.events(TextMessage) if isinstance(e, TextMessage)] == ["ABC"]
    c.sock.sendall(c.ws.send(TextMessage(data="bye")))
    closes = [e for e in c.events(CloseConnection) if isinstance(e, CloseConnection)]
    assert closes and closes[0].code == 4000
    c.sock.close()
    d = WS(srv.port, "/deny")
    events = d.events(RejectData)
    reject = [e for e in events if isinstance(e, RejectConnection)]
    assert reject and reject[0].status_code == 401
    assert b"no token" in b"".join(e.data for e in events if isinstance(e, RejectData))
    d.sock.close()
    e = WS(srv.port, "/close")
    assert any(isinstance(x, RejectConnection) and x.status_code == 403 for x in e.events(RejectData))
    e.sock.close()


def test_flask(ocsi_client):
    srv = ocsi_client(EXT + '<host><site path="f"><wsgi app="flask_app:app"/></site></host>')
    assert json.loads(srv.get("/f/?q=2").body) == {"path": "/", "script": "/f", "q": "2"}
    assert srv.request("POST", "/f/upload", body=b"b" * 200_000).body == b"200000"
    assert srv.get("/f/stream").body == b"".join(f"line {i}\n".encode() for i in range(5))


def test_raw_wsgi(ocsi_client):
    srv = ocsi_client(EXT + '<host><site path="w"><wsgi app="raw_wsgi:app"/></site></host>')
    env = json.loads(srv.get("/w/environ?a=1", {"X-Test": "t"}).body)
    assert env["SCRIPT_NAME"] == "/w" and env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1" and env["HTTP_X_TEST"] == "t" and env["REQUEST_METHOD"] == "GET"
    deadline = time.monotonic() + 5  # close() runs in the thread once the last piece is handed over
    while not sys.modules["raw_wsgi"].CLOSED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sys.modules["raw_wsgi"].CLOSED
    assert srv.request("POST", "/w/input", body=b"i" * 500_000).body == b"500000"
    r = srv.get("/w/file")
    assert r.status == 200 and b"A raw WSGI application" in r.body
    assert srv.get("/w/raise").status == 500
    assert srv.get("/w/none").status == 404


def test_wsgi_full_queue_is_a_503(ocsi_server):
    raw = __import__("raw_wsgi")
    srv = ocsi_server('<maxthreads>1</maxthreads><minthreads>1</minthreads>'
                      '<maxdetachedcomputationsqueued>1</maxdetachedcomputationsqueued>'
                      + EXT + '<host><wsgi app="raw_wsgi:app"/></host>')
    raw = sys.modules["raw_wsgi"]
    raw.RELEASE.clear()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(srv.get("/slow").status)) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    step = srv.server.runtime.hosts[0].steps[0]
    while step.runner.busy < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    r = srv.get("/slow")  # a third: one thread and one queue place are taken
    assert r.status == 503 and r.headers["retry-after"] == "1"
    raw.RELEASE.set()
    for t in threads:
        t.join(10)
    assert results == [200, 200]


def test_wsgi_minthreads_are_started_with_the_configuration(ocsi_server):
    srv = ocsi_server('<maxthreads>5</maxthreads><minthreads>3</minthreads>'
                      + EXT + '<host><wsgi app="raw_wsgi:app"/></host>')
    assert srv.server.runtime.hosts[0].steps[0].runner.threads == 3
    assert srv.get("/w/none").status == 404


def test_reload_serves_the_edited_application(ocsi_server, tmp_path):
    mod = tmp_path / "edited_app.py"
    source = ('async def app(scope, receive, send):\n'
              '    if scope["type"] != "http":\n'
              '        raise RuntimeError("no lifespan")\n'
              '    await send({{"type": "http.response.start", "status": 200, "headers": []}})\n'
              '    await send({{"type": "http.response.body", "body": b"{0}"}})\n')
    mod.write_text(source.format("v1"))
    xml = (f'<findlib path="{tmp_path}"/><extension findlib-package="ocsi-ext-asgi"/>'
           '<host><asgi app="edited_app:app"/></host>')
    srv = ocsi_server(xml)
    assert srv.get("/").body == b"v1"
    mod.write_text(source.format("v2-longer"))
    srv.reload(xml)
    assert srv.get("/").body == b"v2-longer"


def test_fastapi(ocsi_client):
    srv = ocsi_client(EXT + '<host><site path="v1"><asgi app="fast_app:app"/></site></host>')
    assert json.loads(srv.get("/v1/items/5?q=x").body) == {"item_id": 5, "q": "x", "who": "anonymous"}
    assert srv.get("/v1/items/0").status == 418
    r = srv.request("POST", "/v1/items", body=b'{"name": "pen", "price": 10}',
                    headers={"Content-Type": "application/json"})
    assert json.loads(r.body) == {"name": "pen", "price_with_tax": 12.0}
    assert srv.request("POST", "/v1/items", body=b'{"name": 1}',
                       headers={"Content-Type": "application/json"}).status == 422
    assert srv.get("/v1/openapi.json").status == 200


def test_websocket_message_limit_counts_frames_as_they_arrive(ocsi_server):
    srv = ocsi_server(EXT + '<host><asgi app="raw_app:app" websocket-max-message="1024"/></host>')
    c = WS(srv.port, "/ws")
    c.events(AcceptConnection)
    c.sock.sendall(c.ws.send(TextMessage(data="a" * 1000)))
    assert [e.data for e in c.events(TextMessage) if isinstance(e, TextMessage)] == ["A" * 1000]
    for _ in range(3):  # one message in three unfinished frames: refused before it is whole
        c.sock.sendall(c.ws.send(TextMessage(data="b" * 500, message_finished=False)))
    closes = [e for e in c.events(CloseConnection) if isinstance(e, CloseConnection)]
    assert closes and closes[0].code == 1009
    c.sock.close()
