"""The ``<cache>`` step: answers from the store, or lets the steps after it answer and keeps
what they said (through :class:`ocsi.Around`).

A request goes one of these ways, each told in the ``Cache-Status`` field (RFC 9211):

- not GET or HEAD: forwarded (``fwd=method``); an unsafe method that succeeds removes the
  entry of its URL (RFC 9111 §4.4);
- the bypass condition holds: forwarded, nothing stored (``fwd=bypass``);
- a fresh entry: answered from it (``hit``), with ``Age``, the client's own conditions and a
  range of the body answered here;
- a stale one: revalidated with its validators (``fwd=stale``; a 304 refreshes it), or served
  while a background request revalidates it (``stale-while-revalidate``), or served when
  the origin fails (``stale-if-error``);
- none: one request goes forward and the others for the same key wait for what it stores
  (``collapsed``), as nginx's ``proxy_cache_lock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ocsi
from ocsi import DO_NOTHING, Around, Found, NotFound

from . import policy
from .entry import Meta
from .ranges import NOT_MODIFIED_FIELDS, not_modified, single_range
from .store import Hit, Store, Writer, vary_names, vary_values

if TYPE_CHECKING:
    from ocsi import Answer, Request, Rest, State

log = logging.getLogger("ocsi.ext.cache")

SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Statuses from behind that let a stale entry be served under ``stale-if-error``.
ERRORS = frozenset({500, 502, 503, 504})
#: Request fields not sent behind: the cache asks for the whole body and answers conditions
#: and ranges itself.
CLIENT_CONDITIONS = ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since",
                     "if-range", "range")

#: Every live cache, for ``clearcache`` and ``cache:purge``.
registry: weakref.WeakSet[Cache] = weakref.WeakSet()


@dataclass(slots=True)
class Settings:
    """What the element's attributes say."""

    statuses: frozenset[int] = policy.DEFAULT_STATUSES
    #: lifetime of answers without one, by status (``None``: any other stored status)
    default: dict[int | None, float] = field(default_factory=dict)
    heuristic: bool = False
    max_entry: int = 256 * 1024 * 1024
    swr: float = 0.0
    sie: float = 0.0
    lock: bool = True
    lock_timeout: float = 5.0
    store_cookies: bool = False
    name: str = "ocsi"
    #: honour the request's Cache-Control (no-cache, max-age=0, only-if-cached) and Pragma
    request_controls: bool = True
    bypass: list[Callable[[Request], bool]] = field(default_factory=list)


def primary_key(request: Request, target: str | None = None) -> str:
    host = (request.host or "").lower()
    return f"GET {request.scheme}://{host}:{request.port}{target or request.target}"


def url_key(url: str) -> str:
    """The key of ``GET url`` (``cache:purge``): ``ValueError`` for what is not an http(s) URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http or https URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"GET {parts.scheme}://{parts.hostname.lower()}:{port}{target}"


class Cache(ocsi.Step):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._revalidating: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def provision(self) -> None:
        try:
            await asyncio.to_thread(self.store.open)  # counts the files: not on the loop
        except OSError as exc:
            raise ocsi.ConfigError(f"cannot open the cache directory {self.store.directory}: "
                                   f"{exc}", where=self.where,
                                   hint="<datadir> must be a directory the server can write"
                                   ) from None
        registry.add(self)
        inactive = self.store.inactive
        if inactive is not None and self.store.has_files:
            self._spawn(self._sweeping(min(max(inactive / 2, 1.0), 600.0)))

    async def _sweeping(self, every: float) -> None:
        """Remove the files not used for ``inactive`` seconds, every ``every`` seconds."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.store.sweep()
            except OSError as exc:
                log.warning("cache: cannot sweep %s (%s)", self.store.directory, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cleanup(self) -> None:
        registry.discard(self)
        for task in list(self._tasks):
            task.cancel()

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING  # a page already made is not ours to cache
        return Around(self._around)

    # -- the request ------------------------------------------------------------------------------
    async def _around(self, request: Request, state: State, rest: Rest) -> State:
        s = self.settings
        method = request.method
        if method not in ("GET", "HEAD") or "upgrade" in request.headers:
            # a WebSocket handshake is a GET, but its answer is a connection, not a page
            out = await rest(request, state)
            if method not in SAFE and isinstance(out, Found) and out.response.status < 400:
                self.store.purge(primary_key(request))
            return self._mark(out, "fwd=method")
        if any(cond(request) for cond in s.bypass):
            return self._mark(await rest(request, state), "fwd=bypass")
        key = primary_key(request)
        wants_fresh = only_cached = False
        if s.request_controls and ("cache-control" in request.headers
                                   or "pragma" in request.headers):
            wants_fresh, _ = policy.request_wants_fresh(request.headers)
            only_cached = "only-if-cached" in policy.cache_control(
                request.headers.get_all("cache-control"))
        hit, why = self.store.lookup(key, request.headers)
        now = time.time()
        if hit is not None and not wants_fresh:
            meta = hit.meta
            age = meta.age(now)
            if age < meta.lifetime:
                return Found(self._answer(request, hit, now, f"hit; ttl={int(meta.lifetime - age)}"))
            if not meta.strict and age < meta.lifetime + max(meta.swr, s.swr):
                self._background(request, rest, key)
                return Found(self._answer(request, hit, now, f"hit; ttl={int(meta.lifetime - age)}"
                                          "; detail=stale-while-revalidate"))
        if only_cached:
            if hit is not None:
                hit.close()
            return self._mark(Found(ocsi.error_response(504)), f"fwd={why}; detail=only-if-cached")
        fwd = "request" if wants_fresh else ("stale" if hit is not None else why)
        leader: asyncio.Future[None] | None = None
        locked = False
        # what requests wait on: the key, or the key and Vary values when the key has variants
        slot = key if why != "vary-miss" else key + "\0" + self.store.variant(key, request.headers)
        if hit is None and s.lock and not wants_fresh:
            waiting = self._inflight.get(slot)
            if waiting is not None:
                collapsed = await self._wait(key, slot, waiting, request)
                if collapsed is not None:
                    return collapsed
            else:
                leader = asyncio.get_running_loop().create_future()
                self._inflight[slot] = leader
                locked = self.store.try_lock(slot, s.lock_timeout)
                if not locked:
                    # another worker is fetching it: wait for its file (this worker's other
                    # requests for the key wait for this one meanwhile)
                    try:
                        collapsed = await self._wait_other_worker(key, slot, request)
                    except BaseException:
                        self._releaser(slot, leader, False)()
                        raise
                    if collapsed is not None:
                        self._releaser(slot, leader, False)()
                        return collapsed
        release = self._releaser(slot, leader, leader is not None and locked)
        try:
            out = await self._fetch(request, state, rest, key, hit, fwd, release)
        except BaseException:
            release()
            raise
        return out

    async def _wait(self, key: str, slot: str, waiting: asyncio.Future[None],
                    request: Request) -> State | None:
        """Wait for the request in flight for ``slot``; the entry for ``key`` if it stored
        one."""
        try:
            await asyncio.wait_for(asyncio.shield(waiting), self.settings.lock_timeout)
        except TimeoutError:
            if self._inflight.get(slot) is waiting:  # stuck: the next miss goes forward itself
                del self._inflight[slot]
            return None
        return self._fresh_hit(key, request, "collapsed")

    async def _wait_other_worker(self, key: str, slot: str, request: Request) -> State | None:
        """Poll (every 10 ms, at most ``locktimeout``) until the worker holding the slot's
        lock lets it go; the entry for ``key`` if it stored one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.lock_timeout
        while self.store.locked(slot) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self._fresh_hit(key, request, "collapsed")

    def _fresh_hit(self, key: str, request: Request, detail: str) -> State | None:
        hit, _ = self.store.lookup(key, request.headers)
        if hit is None:
            return None
        now = time.time()
        age = hit.meta.age(now)
        if age >= hit.meta.lifetime:
            hit.close()
            return None
        return Found(self._answer(request, hit, now,
                                  f"hit; ttl={int(hit.meta.lifetime - age)}; {detail}"))

    def _releaser(self, key: str, fut: asyncio.Future[None] | None,
                  locked: bool) -> Callable[[], None]:
        done = False

        def release() -> None:
            nonlocal done
            if fut is None or done:
                return
            done = True  # once: the lock may be another's by a second call
            if locked:
                self.store.unlock(key)
            if self._inflight.get(key) is fut:
                del self._inflight[key]
            if not fut.done():
                fut.set_result(None)
        return release

    async def _fetch(self, request: Request, state: State, rest: Rest, key: str,
                     hit: Hit | None, fwd: str, release: Callable[[], None]) -> State:
        """Go behind (conditionally when ``hit`` has validators); store, refresh, or fall
        back on the stale entry."""
        s = self.settings
        forward = self._forward_request(request, hit)
        request_time = time.time()
        try:
            out = await rest(forward, state)
        except Exception:
            if hit is not None and self._stale_if_error(hit.meta):
                log.warning("cache: %s failed behind; serving the stale entry", key,
                            exc_info=True)
                release()
                return Found(self._answer(request, hit, time.time(),
                                          "fwd=stale; detail=stale-if-error"))
            if hit is not None:
                hit.close()
            raise
        if not isinstance(out, Found):
            if hit is not None:
                hit.close()
            release()
            return out
        response = out.response
        if hit is not None and response.status in ERRORS and self._stale_if_error(hit.meta):
            await response.body.aclose()
            release()
            return Found(self._answer(request, hit, time.time(),
                                      f"fwd=stale; fwd-status={response.status}; "
                                      "detail=stale-if-error"))
        if hit is not None and response.status == 304:
            await response.body.aclose()
            refreshed = self._refreshed(hit.meta, response.headers, request_time, time.time())
            self.store.refresh(hit, refreshed)
            hit.meta = refreshed
            release()
            return Found(self._answer(request, hit, time.time(),
                                      f"fwd={fwd}; fwd-status=304; ttl={int(refreshed.lifetime)}"))
        if hit is not None:
            hit.close()
        params = f"fwd={fwd}; fwd-status={response.status}"
        meta, reason = self._new_meta(request, response, request_time, time.time())
        length = response.body.length
        if meta is None or (length is not None and length > s.max_entry):
            release()
            if request.method == "HEAD":
                await response.body.aclose()
                response.body = _Sized(length)
            detail = reason or "too-large"
            return self._mark(out, f"{params}; detail={detail}")
        names = vary_names(response.headers)
        writer = self.store.writer(meta, names, s.max_entry)
        self._tee(response, writer, release)
        if request.method == "HEAD":  # the client has the head; the body goes to the entry
            self._spawn(_drain(response.body, writer))
            response.body = _Sized(length)
        return self._mark(out, f"{params}; stored")

    def _forward_request(self, request: Request, hit: Hit | None) -> Request:
        headers = request.headers.copy()
        for name in CLIENT_CONDITIONS:
            if name in headers:
                headers.remove(name)
        if hit is not None:
            stored = hit.meta.headers_obj()
            etag = stored.get("etag")
            modified = stored.get("last-modified")
            if etag is not None:
                headers.set("if-none-match", etag)
            if modified is not None:
                headers.set("if-modified-since", modified)
        # a HEAD goes behind as a GET, whose answer fills the entry (nginx's
        # proxy_cache_convert_head)
        return request.replace(headers=headers, method="GET")

    def _stale_if_error(self, meta: Meta) -> bool:
        if meta.strict:
            return False
        return meta.age(time.time()) < meta.lifetime + max(meta.sie, self.settings.sie)

    # -- entries ----------------------------------------------------------------------------------
    def _lifetime(self, status: int, headers: ocsi.Headers,
                  response_time: float) -> float | None:
        date = policy.response_date(headers, response_time)
        lifetime = policy.explicit_lifetime(headers, date)
        if lifetime is None and self.settings.heuristic:
            lifetime = policy.heuristic_lifetime(headers, date)
        if lifetime is None:
            default = self.settings.default
            lifetime = default.get(status, default.get(None))
        return lifetime

    def _new_meta(self, request: Request, response: ocsi.Response, request_time: float,
                  response_time: float) -> tuple[Meta | None, str]:
        s = self.settings
        headers = response.headers
        lifetime = self._lifetime(response.status, headers, response_time)
        decision = policy.storable("GET", response.status, request.headers, headers,  # as sent
                                   s.statuses, lifetime_known=lifetime is not None,
                                   store_cookies=s.store_cookies)
        if not decision.store:
            return None, decision.reason.replace(" ", "-")
        cc = policy.cache_control(headers.get_all("cache-control"))
        if "no-cache" in cc and not cc["no-cache"]:
            lifetime = 0.0
        strip = set(decision.strip) | policy.NOT_STORED
        kept = [(n, v) for n, v in headers.items() if n.lower() not in strip]
        names = vary_names(headers)
        return Meta(
            key=primary_key(request), status=response.status, headers=kept,
            request_time=request_time, response_time=response_time,
            initial_age=policy.initial_age(headers, request_time, response_time),
            lifetime=lifetime or 0.0,
            swr=float(max(policy.seconds(cc, "stale-while-revalidate") or 0, 0)),
            sie=float(max(policy.seconds(cc, "stale-if-error") or 0, 0)),
            strict=_strict(cc), vary=vary_values(names, request.headers)), ""

    def _refreshed(self, meta: Meta, fresh: ocsi.Headers, request_time: float,
                   response_time: float) -> Meta:
        """The entry's metadata updated by a 304 (RFC 9111 §4.3.4)."""
        headers = ocsi.Headers(list(meta.headers))
        for name, _ in fresh.items():
            low = name.lower()
            if low in policy.NOT_STORED or low == "content-encoding":
                continue
            values = fresh.get_all(low)
            if low in headers:
                headers.remove(low)
            for v in values:
                headers.add(low, v)
        lifetime = self._lifetime(meta.status, headers, response_time) or 0.0
        cc = policy.cache_control(headers.get_all("cache-control"))
        if "no-cache" in cc and not cc["no-cache"]:
            lifetime = 0.0
        return Meta(key=meta.key, status=meta.status, headers=headers.items(),
                    request_time=request_time, response_time=response_time,
                    initial_age=policy.initial_age(fresh, request_time, response_time),
                    lifetime=lifetime,
                    swr=float(max(policy.seconds(cc, "stale-while-revalidate") or 0, 0)),
                    sie=float(max(policy.seconds(cc, "stale-if-error") or 0, 0)),
                    strict=_strict(cc), vary=meta.vary, length=meta.length)

    def _tee(self, response: ocsi.Response, writer: Writer,
             release: Callable[[], None]) -> None:
        """Replace the body by one that stores each chunk as it goes to the client; the entry
        is committed when the body ends whole, dropped otherwise."""
        source = response.body
        expected = source.length
        if expected == 0:  # nothing to wait for (and an empty body is not read when sent)
            writer.commit()
            release()
            return

        async def chunks() -> AsyncIterator[bytes]:
            keep = True
            try:
                async for chunk in source.chunks():
                    if keep:
                        keep = writer.write(chunk)
                        if keep and writer.size == expected:
                            # whole: stored before the client has the last byte, so its next
                            # request is a hit (a chunked body ends after this loop anyway)
                            writer.commit()
                            release()
                            keep = False
                    yield chunk
            except BaseException:
                writer.discard()
                raise
            if keep and expected is None:  # chunked: whole once it has ended
                writer.commit()
            else:
                writer.discard()
            release()

        async def close() -> None:
            writer.discard()
            release()
            await source.aclose()

        response.body = ocsi.StreamBody(chunks(), length=expected, close=close)

    # -- answering from an entry -------------------------------------------------------------------
    def _answer(self, request: Request, hit: Hit, now: float, status: str) -> ocsi.Response:
        meta = hit.meta
        headers = meta.headers_obj()
        headers.set("age", str(int(meta.age(now))))
        headers.add("cache-status", f"{self.settings.name}; {status}")
        if meta.status == 200 and not_modified(request.headers, headers):
            hit.close()
            kept = [(n, v) for n, v in headers.items()
                    if n.lower() in NOT_MODIFIED_FIELDS or n.lower() in ("age", "cache-status")]
            return ocsi.Response(304, kept)
        if meta.status == 200:
            headers.set("accept-ranges", "bytes")
            if request.method == "GET":
                chosen = single_range(request.headers, headers, meta.length)
                if chosen == "unsatisfiable":
                    hit.close()
                    headers.set("content-range", f"bytes */{meta.length}")
                    for name in ("content-type", "content-encoding", "etag", "last-modified"):
                        if name in headers:
                            headers.remove(name)
                    return ocsi.Response(416, headers, b"")
                if isinstance(chosen, tuple):
                    start, end = chosen
                    headers.set("content-range", f"bytes {start}-{end}/{meta.length}")
                    return ocsi.Response(206, headers, hit.body(start, end - start + 1))
        return ocsi.Response(meta.status, headers, hit.body())

    def _mark(self, state: State, status: str) -> State:
        if isinstance(state, Found):
            state.response.headers.add("cache-status", f"{self.settings.name}; {status}")
        return state

    # -- stale-while-revalidate ---------------------------------------------------------------------
    def _background(self, request: Request, rest: Rest, key: str) -> None:
        """Revalidate ``key`` in a task of its own (one at a time per key)."""
        if key in self._revalidating:
            return
        self._revalidating.add(key)
        copy = request.replace(link=None, stash=dict(request.stash), method="GET")

        async def run() -> None:
            try:
                hit, _ = self.store.lookup(key, copy.headers)
                out = await self._fetch(copy, NotFound(404), rest, key, hit, "stale",
                                        lambda: None)
                if isinstance(out, Found):
                    body = out.response.body
                    try:
                        async for _chunk in body.chunks():
                            pass
                    finally:
                        await body.aclose()
            except Exception:  # noqa: BLE001 - a background update must not take anything down
                log.warning("cache: background revalidation of %s failed", key, exc_info=True)
            finally:
                self._revalidating.discard(key)

        self._spawn(run())

    # -- commands ----------------------------------------------------------------------------------
    def purge(self, key: str) -> bool:
        return self.store.purge(key)

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            self.store.clear()



class _Sized(ocsi.Body):
    """The body of an answer to HEAD: its length only (the server sends no body for HEAD)."""

    def __init__(self, length: int | None) -> None:
        self.length = length

    async def chunks(self) -> AsyncIterator[bytes]:
        return
        yield b""  # an async generator that yields nothing


async def _drain(body: ocsi.Body, writer: Writer) -> None:
    """Read the body of a GET made for a HEAD into its entry; stop as soon as the entry is
    dropped (too large), never reading more than it takes."""
    try:
        async for _chunk in body.chunks():
            if writer.done:
                break
    except Exception as exc:  # noqa: BLE001 - the entry is dropped; nobody waits for it
        log.info("cache: the body fetched for a HEAD failed (%s); not stored", exc)
    finally:
        await body.aclose()


def _strict(cc: dict[str, str | None]) -> bool:
    """Never served stale: ``must-revalidate``, ``proxy-revalidate``, ``s-maxage`` (which
    implies proxy-revalidate, RFC 9111 §5.2.2.10)."""
    return any(d in cc for d in ("must-revalidate", "proxy-revalidate", "s-maxage"))
