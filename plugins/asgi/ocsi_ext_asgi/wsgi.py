"""WSGI applications (PEP 3333) in a bounded thread pool.

Ocsigen's own limits size it: ``<maxthreads>`` threads, and at most
``<maxdetachedcomputationsqueued>`` requests waiting for one (four times ``maxthreads`` when
unset);
past that a request gets **503** at once rather than joining an unbounded backlog. The request
body is read from the client as the application reads ``wsgi.input``; what the application
returns is handed to the client piece by piece, the thread waiting while the client is slow.
``close()`` is always called. ``wsgi.file_wrapper`` over a real file is sent with the
server's file path (``sendfile`` on plain connections).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

from ocsi import (
    BodyAborted,
    BytesBody,
    FileBody,
    Headers,
    Request,
    Response,
    StreamBody,
)
from ocsi.httputil import split_host_port

__all__ = ["FileWrapper", "WSGIRunner", "wsgi_environ"]

log = logging.getLogger("ocsi.ext.asgi")
_END = object()


class FileWrapper:
    """``wsgi.file_wrapper``: iterable over the file, and recognised for zero-copy sending."""

    def __init__(self, filelike: Any, block_size: int = 256 * 1024) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Any:
        while data := self.filelike.read(self.block_size):
            yield data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class _Input:
    """``wsgi.input``: the request body, read from the client only as the application asks."""

    def __init__(self, request: Request, loop: asyncio.AbstractEventLoop) -> None:
        self._request = request
        self._loop = loop
        self._buffer = b""
        self._eof = False

    def _more(self) -> bool:
        if self._eof:
            return False
        chunk = asyncio.run_coroutine_threadsafe(self._request.body.next_chunk(), self._loop).result()
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._more():
                pass
            data, self._buffer = self._buffer, b""
            return data
        while len(self._buffer) < size and self._more():
            pass
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        while b"\n" not in self._buffer and (size is None or size < 0 or len(self._buffer) < size) \
                and self._more():
            pass
        end = self._buffer.find(b"\n") + 1 or len(self._buffer)
        if size is not None and size >= 0:
            end = min(end, size)
        data, self._buffer = self._buffer[:end], self._buffer[end:]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        while line := self.readline():
            lines.append(line)
        return lines

    def __iter__(self) -> Any:
        while line := self.readline():
            yield line


class _Errors:
    """``wsgi.errors``: to the error log, a line at a time."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            log.error("%s: %s", self._where, line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            log.error("%s: %s", self._where, self._pending)
            self._pending = ""


def _latin1_path(raw_segments: tuple[str, ...]) -> str:
    return unquote_to_bytes("/" + "/".join(raw_segments)).decode("latin-1") if raw_segments else ""


def wsgi_environ(request: Request, loop: asyncio.AbstractEventLoop, where: str,
                 multiprocess: bool) -> dict[str, Any]:
    depth = request.depth
    script = _latin1_path(request.raw_segments[:depth])
    path = _latin1_path(request.raw_segments[depth:]) or ("/" if not script else "")
    host, port = split_host_port(request.host_header) if request.host_header else ("", None)
    env: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script,
        "PATH_INFO": path,
        "QUERY_STRING": request.query or "",
        "SERVER_NAME": host or request.host or "localhost",
        "SERVER_PORT": port or str(request.port),
        "SERVER_PROTOCOL": "HTTP/2" if request.version == "2.0" else f"HTTP/{request.version}",
        "REMOTE_ADDR": request.client,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.input": _Input(request, loop),
        "wsgi.errors": _Errors(where),
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    for name, value in request.headers.items():
        if name == "content-type":
            env["CONTENT_TYPE"] = value
        elif name == "content-length":
            env["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            env[key] = env[key] + "," + value if key in env else value
    return env


class WSGIRunner:
    """The threads of one ``<wsgi>`` (per configuration) and the admission count."""

    def __init__(self, app: Any, where: str, threads: int, queued: int | None,
                 multiprocess: bool = False) -> None:
        self.app = app
        self.where = where
        self.max_threads = threads
        self.limit = threads + (queued if queued is not None else 4 * threads)
        self.busy = 0
        self.multiprocess = multiprocess
        self._threads = 0  # counted by the pool's threads as they start
        self._threads_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ocsi-wsgi",
                                        initializer=self._thread_started)

    async def start_threads(self, count: int) -> None:
        """Start ``count`` threads now (Ocsigen's ``<minthreads>``), so the first requests after
        a load or a reload do not each pay for a new thread. The pool makes a thread for a job
        when no thread is idle: jobs that wait for each other force ``count`` of them."""
        count = min(count, self.max_threads)
        if count <= 0:
            return
        barrier = threading.Barrier(count)

        def meet() -> None:
            try:
                barrier.wait(5)
            except threading.BrokenBarrierError:
                pass

        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, meet) for _ in range(count)))

    def _thread_started(self) -> None:
        """Run by each thread the pool starts (its ``initializer``)."""
        with self._threads_lock:
            self._threads += 1

    @property
    def threads(self) -> int:
        """Threads started so far."""
        return self._threads

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def respond(self, request: Request) -> Response | None:
        """The application's answer; None when it failed before starting one (logged)."""
        loop = asyncio.get_running_loop()
        head: asyncio.Future[tuple[int, str, list[tuple[str, str]]]] = loop.create_future()
        pieces: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        gone = threading.Event()
        environ = wsgi_environ(request, loop, self.where, self.multiprocess)

        def put(item: Any) -> None:
            if gone.is_set():
                raise BodyAborted("the client has gone")
            asyncio.run_coroutine_threadsafe(pieces.put(item), loop).result()

        started: list[tuple[int, str, list[tuple[str, str]]]] = []
        published = False

        def publish() -> None:  # the head goes to the loop with the first piece of the body
            nonlocal published
            if not published and started:
                published = True
                loop.call_soon_threadsafe(_settle, head, started[-1])

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None and published:
                raise exc_info[1].with_traceback(exc_info[2])
            code, _, reason = status.partition(" ")
            started.append((int(code), reason, [(n.lower(), v) for n, v in headers]))

            def write(data: bytes) -> None:
                if data:
                    publish()
                    put(bytes(data))
            return write

        def run() -> None:
            result: Any = None
            try:
                result = self.app(environ, start_response)
                if isinstance(result, (list, tuple)) and started and not published:
                    # already all in memory: head and body reach the loop in one hop
                    whole = b"".join(bytes(c) for c in result)
                    loop.call_soon_threadsafe(_whole, head, started[-1], pieces, whole)
                    return
                publish()
                if isinstance(result, FileWrapper) and hasattr(result.filelike, "fileno"):
                    fd = os.dup(result.filelike.fileno())
                    offset = result.filelike.tell() if hasattr(result.filelike, "tell") else 0
                    size = os.fstat(fd).st_size - offset
                    put(FileBody(fd, offset, size))
                else:
                    for chunk in result:
                        if chunk:
                            put(bytes(chunk))
                put(_END)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:  # noqa: BLE001
                        log.exception("%s: close() of the WSGI iterable failed", self.where)

        self.busy += 1
        done = loop.run_in_executor(self._pool, run)
        done.add_done_callback(lambda _: setattr(self, "busy", self.busy - 1))
        first_piece = asyncio.ensure_future(pieces.get())
        waited, _ = await asyncio.wait({first_piece, done}, return_when=asyncio.FIRST_COMPLETED)
        if first_piece not in waited:
            first_piece.cancel()
            exc = done.exception()
            log.error("%s: the application failed before answering", self.where,
                      exc_info=exc if exc is not None else None)
            return None
        first = first_piece.result()
        if not head.done():
            gone.set()
            log.error("%s: the application sent a body before start_response", self.where)
            return None
        status, reason, fields = head.result()
        length = None
        kept = []
        for name, value in fields:
            if name == "content-length" and value.strip().isdigit():
                length = int(value)
            elif name not in ("transfer-encoding", "connection"):
                kept.append((name, value))
        headers = Headers.from_lower(kept)
        if isinstance(first, _Whole):
            return Response(status, headers, BytesBody(first.data), reason=reason or None)
        if isinstance(first, FileBody):
            return Response(status, headers, first, reason=reason or None)
        if first is _END:
            return Response(status, headers, BytesBody(b""), reason=reason or None)

        async def rest() -> AsyncIterator[bytes]:
            yield first
            while True:
                getter = asyncio.ensure_future(pieces.get())
                waited, _ = await asyncio.wait({getter, done}, return_when=asyncio.FIRST_COMPLETED)
                if getter in waited:
                    item = getter.result()
                    if item is _END:
                        return
                    if isinstance(item, FileBody):
                        await item.aclose()
                        continue
                    yield item
                    continue
                getter.cancel()
                if pieces.empty():
                    exc = done.exception()
                    log.error("%s: the application failed in the middle of its answer",
                              self.where, exc_info=exc if exc is not None else None)
                    raise BodyAborted(f"{self.where}: the application failed mid-answer")

        async def close() -> None:
            gone.set()
            while not pieces.empty():  # unblock the thread if it waits to put
                pieces.get_nowait()

        return Response(status, headers, StreamBody(rest(), length, close), reason=reason or None)


class _Whole:
    """The whole body, delivered at once (the application returned a list)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _whole(head: asyncio.Future[Any], value: Any, pieces: asyncio.Queue[Any], body: bytes) -> None:
    _settle(head, value)
    pieces.put_nowait(_Whole(body))


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)
