"""The relay after a backend's ``101`` to a WebSocket handshake (bytes both ways, frames read
for websocket-max-message, never changed), and stopping a relay's task.

Apart from :mod:`.step`, which forwards and answers: a WebSocket is rare beside plain
exchanges, and its relay has nothing of theirs.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from ocsi import Headers, Response, Tunnel, TunnelBody
from ocsi.client import header_fields

from .client import UpstreamConnection
from .headers import response_headers
from .wsframes import CLOSE_TOO_BIG, FrameScanner, close_frame

log = logging.getLogger("ocsi.ext.revproxy")


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel a task unless done, and wait for it; whatever it raised is nobody's concern now."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await task
    except BaseException:  # noqa: BLE001 - its outcome is no longer anyone's concern
        pass


def switched(conn: UpstreamConnection, head: h11.InformationalResponse, where: str,
             limit: int | None) -> Response:
    """The backend accepted the WebSocket handshake: relay its 101, then bytes both ways
    until either side closes. ``where``: the rule and the destination, for the log;
    ``limit``: websocket-max-message."""
    fields, _ = response_headers(header_fields(head.headers), switching=True)
    early = conn.switch()  # what it sent right after its head, and raw bytes from now on
    raw = conn.raw
    assert raw is not None

    from_client = FrameScanner(limit) if limit is not None else None
    from_backend = FrameScanner(limit) if limit is not None else None

    async def run(tunnel: Tunnel) -> None:
        async def too_big(side: str) -> None:
            """Close both sides with 1009, each only between two frames (else just cut)."""
            assert from_client is not None and from_backend is not None
            log.warning("%s: a WebSocket message from the %s is over websocket-max-message "
                        "(%s bytes): closed with %d", where, side, limit, CLOSE_TOO_BIG)
            if from_backend.at_boundary:
                tunnel.write(close_frame(CLOSE_TOO_BIG, masked=False))
            if from_client.at_boundary:
                conn.write(close_frame(CLOSE_TOO_BIG, masked=True))
            await conn.drain()
            await tunnel.drain()

        async def up() -> None:
            while data := await tunnel.read():
                if from_client is not None:
                    data = from_client.feed(data)
                if data:
                    conn.write(data)
                    await conn.drain()
                if from_client is not None and from_client.too_big:
                    await too_big("client")
                    return

        async def down() -> None:
            data = early
            while True:
                if from_backend is not None:
                    data = from_backend.feed(data)
                if data:
                    tunnel.write(data)
                    await tunnel.drain()
                if from_backend is not None and from_backend.too_big:
                    await too_big("backend")
                    return
                data = await raw.get()
                if not data:
                    return

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, (ConnectionError, OSError)):
                    log.error("%s: WebSocket relay failed: %r", where, exc)
        finally:
            for task in tasks:
                await stop(task)
            conn.close()

    return Response(101, Headers.from_lower(fields), TunnelBody(run))
