"""The Python peer for the proxy rows: aiohttp's server forwarding with aiohttp's pooled client.

``python bench/aiohttp_proxy.py PORT BACKEND_URL``: every request is sent to the backend with
one shared ClientSession (keep-alive pool) and the response streamed back, the way a small
aiohttp reverse proxy is usually written.
"""

from __future__ import annotations

import sys

from aiohttp import ClientSession, TCPConnector, web

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}


async def main_app(backend: str) -> web.Application:
    app = web.Application()

    async def start(app: web.Application) -> None:
        app["session"] = ClientSession(connector=TCPConnector(limit=256), auto_decompress=False)

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with app["session"].request(request.method, backend + request.path_qs,
                                          headers=headers, data=request.content) as up:
            out = web.StreamResponse(status=up.status, headers={
                k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP})
            if up.content_length is not None:
                out.content_length = up.content_length
            await out.prepare(request)
            async for chunk in up.content.iter_chunked(65536):
                await out.write(chunk)
            await out.write_eof()
            return out

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


if __name__ == "__main__":
    port, backend = int(sys.argv[1]), sys.argv[2].rstrip("/")
    web.run_app(main_app(backend), host="127.0.0.1", port=port, access_log=None)
