"""101 Switching Protocols with a TunnelBody: bytes both ways after the head; refused when the
request did not ask to upgrade."""

from __future__ import annotations

import socket

from ocsi import Response, TunnelBody


async def _echo(tunnel) -> None:  # type: ignore[no-untyped-def]
    while data := await tunnel.read():
        tunnel.write(data.upper())
        await tunnel.drain()


async def app(req):  # type: ignore[no-untyped-def]
    return Response(101, [("upgrade", "shout"), ("connection", "upgrade")], TunnelBody(_echo))


def test_tunnel_after_101(serve, http):  # type: ignore[no-untyped-def]
    srv = serve(app)
    with srv.connect() as s:
        # the first bytes of the new protocol come with the request: they reach the tunnel
        s.sendall(b"GET /t HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhello")
        data = b""
        while b"HELLO" not in data:
            data += s.recv(4096)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"\r\nUpgrade: shout" in head and b"\r\nConnection: upgrade" in head
        assert rest == b"HELLO"
        s.sendall(b"more")
        assert s.recv(4096) == b"MORE"
        s.shutdown(socket.SHUT_WR)
        assert s.recv(4096) == b""  # the tunnel ended: the connection is closed
    records = srv.wait_records(1)
    assert records[0].status == 101 and records[0].bytes_sent == 9


def test_a_101_for_a_request_that_did_not_ask_is_a_500(serve, http):  # type: ignore[no-untyped-def]
    srv = serve(app)
    resp = http.exchange(srv, b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n")[0]
    assert resp.status == 500
