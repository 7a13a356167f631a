"""Serving from Python objects, no XML (ocsi.embed)."""

import asyncio
import http.client
import threading

from ocsi import FunctionStep, Response, Serve
from ocsi.embed import host, server, site
from ocsi_ext_deflatemod import deflate
from ocsi_ext_staticmod import static


def test_embedded_server(tmp_path):
    (tmp_path / "a.txt").write_text("from a file " * 50)

    async def hello(request, state):
        return Serve(Response(200, [("content-type", "text/plain")], b"hello from python"))

    srv = server([host(site("api", FunctionStep(hello)), static(dir=str(tmp_path)),
                       deflate("allbut", types=["image/*"]))], port=0)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    srv.install_signals = False

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(srv.start())
        ready.set()
        loop.run_until_complete(srv.wait_stopped())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(20)
    try:
        def get(path, **headers):
            conn = http.client.HTTPConnection("127.0.0.1", srv.ports[0], timeout=5)
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Encoding"), r.read()
        assert get("/api/x") == (200, None, b"hello from python")
        status, coding, body = get("/a.txt", **{"Accept-Encoding": "gzip"})
        assert status == 200 and coding == "gzip"
        assert get("/api")[0] == 301
        assert get("/nope")[0] == 404
    finally:
        asyncio.run_coroutine_threadsafe(srv.shutdown(2), loop).result(15)
        t.join(10)
