"""A Starlette application: routes, streaming, WebSocket, lifespan and state."""

import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

EVENTS = []


@contextlib.asynccontextmanager
async def lifespan(app):
    EVENTS.append("startup")
    yield {"db": "connected"}
    EVENTS.append("shutdown")


async def home(request):
    return JSONResponse({"path": request.url.path, "root": request.scope["root_path"],
                         "db": request.state.db, "q": request.query_params.get("q")})


async def stream(request):
    async def chunks():
        for i in range(5):
            yield f"chunk {i}\n"
    return StreamingResponse(chunks(), media_type="text/plain")


async def upload(request):
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return PlainTextResponse(str(total))


async def ws(websocket):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"echo: {text}")


app = Starlette(routes=[Route("/", home), Route("/stream", stream),
                        Route("/upload", upload, methods=["POST"]), WebSocketRoute("/ws", ws)],
                lifespan=lifespan)
