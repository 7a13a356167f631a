"""Edges: half-closed clients, clients that stop reading, other address families."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import time

import pytest

from ocsi._http import FileBody, Request, Response, StreamBody
from ocsi._http.connection import ConnectionManager
from ocsi._http.limits import Limits

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


async def echo(req: Request) -> Response:
    body = await req.body.read()
    return Response(200, body=b"%s %s" % (req.client.encode(), body))


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _wait(cond, timeout=3.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


def test_half_closed_client_still_gets_its_responses(serve, http):
    srv = serve(echo)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                  b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        r = http.Reader(s)
        assert r.response().body == b"127.0.0.1 hi"
        assert r.response().body == b"127.0.0.1 "
        assert r.at_eof()


def test_body_not_read_yet_is_not_a_read_timeout(serve, http):
    async def late_reader(req):
        await asyncio.sleep(0.6)  # longer than read_timeout; the server paused reading meanwhile
        data = await req.body.read()
        return Response(200, body=b"%d" % len(data))

    srv = serve(late_reader, Limits(read_timeout=0.3))
    data = b"d" * (2 * 1024 * 1024)
    with srv.connect() as s:
        s.sendall(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        assert http.Reader(s).response().body == b"%d" % len(data)


@pytest.mark.parametrize("loop", LOOPS)
def test_client_that_stops_reading_a_stream_is_dropped(serve, http, loop):
    closed = []

    async def endless():
        chunk = b"e" * 65536
        while True:
            yield chunk

    async def app(req):
        async def on_close():
            closed.append(True)
        return Response(200, body=StreamBody(endless(), close=on_close))

    srv = serve(app, Limits(read_timeout=0.3), loop=loop)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.connect(("127.0.0.1", srv.port))
    with s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _wait(lambda: closed == [True], 5.0), "stream not closed after the write timeout"
        recs = srv.wait_records(1)
        assert recs[0].status == 200 and recs[0].bytes_sent > 0
    assert _wait(lambda: srv.run(lambda: srv.manager.active) == 0)


@pytest.mark.parametrize("loop", LOOPS)
def test_client_that_stops_reading_a_sendfile_is_dropped(serve, http, tmp_path, loop):
    path = tmp_path / "huge.bin"
    with open(path, "wb") as f:
        f.truncate(256 * 1024 * 1024)  # sparse: cheap to create, sendfile reads zeros

    async def app(req):
        fd = os.open(path, os.O_RDONLY)
        return Response(200, body=FileBody(fd, 0, os.fstat(fd).st_size))

    srv = serve(app, Limits(read_timeout=0.3), loop=loop)
    before = _fds()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.connect(("127.0.0.1", srv.port))
    with s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        recs = srv.wait_records(1, timeout=5.0)
        assert recs and 0 < recs[0].bytes_sent < 256 * 1024 * 1024
    assert _wait(lambda: srv.run(lambda: srv.manager.active) == 0)
    assert _wait(lambda: _fds() <= before)  # the file, the socket and its duplicate are closed


def test_ipv6_client_address(http):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sock = socket.socket(socket.AF_INET6)
        sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = sock.getsockname()[1]
    seen = []

    async def app(req):
        seen.append((req.client, req.host, req.port))
        return Response(200)

    async def main():
        m = ConnectionManager(app, Limits())
        srv = await asyncio.get_running_loop().create_server(m.protocol_factory(port, False),
                                                             sock=sock)
        r, w = await asyncio.open_connection("::1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: [::1]:%d\r\nConnection: close\r\n\r\n" % port)
        data = await asyncio.wait_for(r.read(), 3)
        w.close()
        srv.close()
        await m.shutdown(1)
        return data

    assert asyncio.run(main()).startswith(b"HTTP/1.1 200 ")
    assert seen == [("::1", "[::1]", port)]


def test_unix_socket_client_address(tmp_path):
    path = str(tmp_path / "s.sock")
    seen = []

    async def app(req):
        seen.append(req.client)
        return Response(200, body=b"unix ok")

    async def main():
        m = ConnectionManager(app, Limits())
        srv = await asyncio.get_running_loop().create_unix_server(m.protocol_factory(0, False),
                                                                  path)
        r, w = await asyncio.open_unix_connection(path)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 3)
        w.close()
        srv.close()
        await m.shutdown(1)
        return data

    assert asyncio.run(main()).endswith(b"unix ok")
    assert seen == ["unix:"]


@pytest.mark.parametrize("loop", LOOPS)
def test_sendfile_waits_for_what_the_transport_buffered(serve, http, tmp_path, loop,
                                                        monkeypatch):
    from ocsi._http.connection import HTTPProtocol
    from ocsi._http.sending import ResponseWriter

    flushes = []
    real_flush = ResponseWriter._flush

    async def spy(self):
        flushes.append(self.transport.get_write_buffer_size())
        await real_flush(self)

    monkeypatch.setattr(ResponseWriter, "_flush", spy)
    real_made = HTTPProtocol.connection_made

    def made(self, transport):
        real_made(self, transport)
        transport.set_write_buffer_limits(high=64 * 1024 * 1024)  # keep the first body buffered
        # a fixed kernel send buffer: autotuning (up to tcp_wmem's 4 MiB) could take the whole
        # first body, leaving nothing buffered for sendfile to wait for
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)

    monkeypatch.setattr(HTTPProtocol, "connection_made", made)
    first = os.urandom(4 * 1024 * 1024)
    second = os.urandom(3 * 1024 * 1024)
    path = tmp_path / "second.bin"
    path.write_bytes(second)

    async def app(req):
        if req.target == "/first":
            return Response(200, body=first)
        fd = os.open(path, os.O_RDONLY)
        return Response(200, body=FileBody(fd, 0, len(second)))

    srv = serve(app, loop=loop)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    with s:
        s.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)  # let the first response fill the buffers
        r = http.Reader(s)
        assert r.response().body == first
        assert r.response().body == second
    assert flushes and flushes[0] > 0


@pytest.mark.parametrize("loop", LOOPS)
def test_separately_written_pieces_arrive_whole(serve, http, loop):
    # A head and chunks written separately; that they are not held back by Nagle's algorithm
    # (40 ms per response waiting for the client's delayed ACK) is TCP_NODELAY on the socket,
    # asserted by test_accepted_sockets_have_nodelay. Timing belongs to bench/.
    async def gen():
        yield b"a"
        await asyncio.sleep(0)
        yield b"b"

    async def app(req):
        return Response(200, body=StreamBody(gen()))

    srv = serve(app, loop=loop)
    with srv.connect() as s:
        r = http.Reader(s)
        for _ in range(10):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = r.response()
            assert resp.body == b"ab" and resp.header("transfer-encoding") == "chunked"
