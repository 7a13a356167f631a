"""A raw ASGI 3 application exercising the scope and every message type (the tests' own)."""

import asyncio
import json
import os

STARTED = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello from lifespan"
                STARTED.append("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                STARTED.append("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    path = scope["path"][len(scope["root_path"]):] or "/"
    if path == "/scope":
        info = {k: (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in scope.items()
                if k not in ("headers", "state", "extensions", "asgi")}
        info["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
        info["state"] = scope["state"]
        body = json.dumps(info).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/echo":
        total, parts = 0, []
        while True:
            message = await receive()
            parts.append(len(message.get("body", b"")))
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{total} in {len(parts)}".encode()})
    elif path.startswith("/stream/"):
        n = int(path.split("/")[2])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-s", b"1")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/file":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(os.path.getsize(__file__)).encode())]})
        await send({"type": "http.response.pathsend", "path": os.path.abspath(__file__)})
    elif path == "/raise":
        raise RuntimeError("the application broke")
    elif path == "/raise-mid":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("broke in the middle")
    elif path == "/nothing":
        return
    elif path == "/twice":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/long-poll":  # nothing to say until the client leaves
        message = await receive()
        assert message["type"] == "http.request" and not message["more_body"]
        STARTED.append("polling")
        message = await receive()
        STARTED.append(f"long-poll {message['type']}")
    elif path == "/later":  # answers after a few turns of the loop, framing fields of its own
        for _ in range(3):
            await asyncio.sleep(0)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5"), (b"connection", b"close"),
                                (b"transfer-encoding", b"chunked"), (b"X-A", b"1")]})
        await send({"type": "http.response.body", "body": bytearray(b"hello")})
    elif path == "/stream-404":  # a 404 page in pieces, read and dropped when steps follow
        await send({"type": "http.response.start", "status": 404, "headers": []})
        for _ in range(3):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        STARTED.append("stream-404 done")
    elif path == "/endless":  # streams until the client leaves (bounded: 6.4 GB at most)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(100_000):
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        except OSError:
            STARTED.append("endless: the client has gone")
            return
        await send({"type": "http.response.body", "body": b""})
    elif path == "/disconnect":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        message = await receive()  # the (empty) request body, then the end of the exchange
        if message["type"] == "http.request":
            message = await receive()
        STARTED.append(message["type"])
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"app 404"})


async def websocket(scope, receive, send):
    message = await receive()
    assert message["type"] == "websocket.connect"
    if scope["path"].endswith("/deny"):
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"x-why", b"token")]})
        await send({"type": "websocket.http.response.body", "body": b"no token"})
        return
    if scope["path"].endswith("/close"):
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            STARTED.append(f"disconnect {message['code']}")
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4000})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"].upper()})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


async def trailers_app(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError("no lifespan")
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"trailer", b"x-checksum"), (b"content-length", b"6")]})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"def"})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"sum-1")]})
