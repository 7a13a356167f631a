"""The Starlette application the browser tests use behind ``<asgi>`` and ``<revproxy>``: a form
with a file upload, a WebSocket echo, and a redirect to its own absolute URL (as a backend
that knows only its own address writes them)."""

import hashlib
import html

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

FORM = """<!doctype html><title>upload</title>
<form method="post" action="upload" enctype="multipart/form-data">
<input name="title" id="title"><input type="file" name="doc" id="doc">
<button id="send">Send</button></form>"""


async def form(request: Request) -> Response:
    return HTMLResponse(FORM)


async def upload(request: Request) -> Response:
    async with request.form() as data:
        doc = data["doc"]
        assert isinstance(doc, UploadFile), "the form's file field"
        content = await doc.read()
        fields = {"title": data["title"], "file": doc.filename, "size": len(content),
                  "sha256": hashlib.sha256(content).hexdigest()}
    items = "".join(f"<li id={k}>{html.escape(str(v))}</li>" for k, v in fields.items())
    return HTMLResponse(f"<!doctype html><title>received</title><ul>{items}</ul>")


async def go(request: Request) -> Response:
    return RedirectResponse(f"{request.url_for('landed')}?from=go", status_code=302)


async def landed(request: Request) -> Response:
    came = html.escape(request.query_params["from"])
    return HTMLResponse(f"<!doctype html><title>landed</title><p>landed from {came}</p>")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(f"echo: {message['text']}")
        else:
            await websocket.send_bytes(message["bytes"][::-1])


app = Starlette(routes=[Route("/form", form), Route("/upload", upload, methods=["POST"]),
                        Route("/go", go), Route("/landed", landed, name="landed"),
                        WebSocketRoute("/ws", echo)])
