"""The ``<static>`` step: resolution, then the response (file, range, 304, redirect, listing).

Per-request order (spec §4.1 with ocsi's fixes):

1. ``Found`` → ``DO_NOTHING``; ``code=`` not matching the current status → ``DO_NOTHING``.
2. Unsafe segment (``/``, ``\\``, NUL after decoding) → not concerned (404).
3. Map to a path (directory or regexp mode; ``..`` or a path outside ``root=`` → 403).
4. Check the path under the scope's symlink policy (cached): miss → ``Next(status)``.
5. ``<forbidfile>`` → ``Next(403)``, ``<hidefile>`` → not found; checked on the final path and
   on every directory below the root on the way. Then a name of the path below the root that
   ``protect=`` names (``.ht*``, ``.git``, ``.env`` by default) → not found.
6. A method other than GET/HEAD on something that exists → 405 with ``Allow: GET, HEAD``.
7. Directory without ``/`` → 301; with ``/`` → first index file (``<defaultindex>``), else a
   listing (``<listdirs>``), else not found. A file named with a trailing ``/`` → not found.
8. File: precompressed sibling, preconditions (304/412), ``Range`` (206/416), else 200.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, cast

from ocsi import (
    DO_NOTHING,
    BytesBody,
    FileBody,
    Found,
    Headers,
    Next,
    NotFound,
    Response,
    Serve,
    Step,
    StreamBody,
    error_response,
)
from ocsi.httputil import (
    format_http_date,
    slash_redirect,
)

from . import conditional, listing
from .cache import BODIES, FileCache, default_cache
from .encoding import SUFFIXES, choose
from .parse import DirectorySpec, StaticSpec
from .ranges import UNSATISFIABLE, Multipart, content_range, parse_range
from .resolve import (
    DIR,
    FILE,
    INSIDE,
    Entry,
    Stale,
    errno_status,
    inside,
    normalise,
    open_file,
    path_of_segments,
)

if TYPE_CHECKING:
    from ocsi import Answer, Request, SiteConfig, State

log = logging.getLogger("ocsi.ext.staticmod")

ALLOW = "GET, HEAD"
_FORBIDDEN = Next(403)

_expires_second = -1
_expires_cache: dict[int, str] = {}


def _expires(seconds: int) -> str:
    """``Expires`` for now + ``seconds``, formatted at most once per second per duration."""
    global _expires_second
    now = int(time.time())
    if now != _expires_second:
        _expires_cache.clear()
        _expires_second = now
    value = _expires_cache.get(seconds)
    if value is None:
        value = _expires_cache[seconds] = format_http_date(now + seconds)
    return value


#: Headers a 304 repeats (RFC 9110 §15.4.5): validators and caching metadata.
_KEEP_304 = frozenset(("last-modified", "etag", "vary", "cache-control", "expires"))


def _has_conditions(headers: Headers) -> bool:
    """Whether any ``If-*`` or ``Range`` field is present (one pass; most requests have none)."""
    for name, _ in headers:
        if name.startswith("if-") or name == "range":
            return True
    return False


def method_not_allowed() -> Response:
    resp = error_response(405)
    resp.headers.add("allow", ALLOW)
    return resp


class Static(Step):
    """``<static>``: serves files below a directory or at paths computed from a regexp."""

    def __init__(self, spec: StaticSpec, cache: FileCache | None = None, where: str = "?") -> None:
        self.spec = spec
        self.cache = cache if cache is not None else default_cache
        self.where = where
        self._weak = spec.etag == "weak"
        self._no_etag = spec.etag == "off"
        if spec.cache is None:
            self._cache_headers: tuple[tuple[str, str], ...] | None = None
        elif spec.cache == 0:
            self._cache_headers = (("cache-control", "no-cache"), ("expires", "0"))
        else:
            self._cache_headers = None
        self._max_age = f"max-age={spec.cache}" if spec.cache else None
        # symlink checks start below the directory, or below a user's directory (userconf)
        check = spec.directory if isinstance(spec, DirectorySpec) else None
        if spec.userconf is not None:
            check = os.path.normpath(spec.userconf)
            check = "" if check == "/" else check
        self._dir_check_root = check
        self._confined = spec.userconf is not None
        #: The fields of files answered from memory, by ``(entry, path)``: ``(configuration,
        #: vary, fields)``. The same file gets the same fields until its check changes (a new
        #: entry), the scope's configuration does, or the precompressed siblings do (``vary``);
        #: not kept when ``Expires`` moves with the clock. Bounded as the kept bodies are.
        self._kept_fields: dict[tuple[Entry, str], tuple[SiteConfig, bool, tuple[tuple[str, str], ...]]] = {}

    def __repr__(self) -> str:
        s = self.spec
        what = f"dir={s.directory or '/'}" if isinstance(s, DirectorySpec) else f"dest={s.dest.text}"
        return f"<Static {what}>"

    # -- entry point ---------------------------------------------------------------------------------
    async def handle(self, request: Request, state: State) -> Answer:
        if type(state) is Found:
            return DO_NOTHING
        status = cast(NotFound, state).status
        spec = self.spec
        code_page = False
        if isinstance(spec, DirectorySpec):
            mapped = path_of_segments(spec.directory, request.sub_path)
            if mapped is None:
                return DO_NOTHING
            path, trailing = mapped
            check_root = self._dir_check_root or ""
        else:
            code = spec.code
            if code is not None:
                if not code.matches(str(status)):
                    return DO_NOTHING
                code_page = True
            for seg in request.sub_path:
                if "/" in seg or "\\" in seg or "\x00" in seg:
                    return DO_NOTHING
            m = spec.regexp.fullmatch(request.sub_path_str)
            if m is None:
                return DO_NOTHING
            dest = spec.dest.expand(m)
            if dest is None:
                return DO_NOTHING  # $u(unknown user)
            if spec.userconf is not None:
                if ".." in dest.split("/"):
                    return _FORBIDDEN
                dest = spec.userconf.rstrip("/") + "/" + dest
            elif not dest.startswith("/"):
                dest = os.path.join(spec.cwd, dest)
            norm = normalise(dest)
            if norm is None:
                return _FORBIDDEN
            path, trailing = norm
            if spec.userconf is not None:
                check_root = os.path.normpath(spec.userconf)
            elif spec.root is not None:
                root = spec.root.expand(m)
                if root is None:
                    return DO_NOTHING
                check_root = os.path.normpath(os.path.join(spec.cwd, root))
            else:
                check_root = ""
            check_root = "" if check_root == "/" else check_root
            if not inside(path, check_root):
                return _FORBIDDEN
        return self.serve_path(request, status, path, trailing, check_root, code_page)

    # -- resolution ----------------------------------------------------------------------------------
    def _ruled(self, cfg: SiteConfig, path: str, check_root: str) -> int:
        """403 (forbidfile), 404 (hidefile) or 0, for ``path`` and its directories below the root."""
        forbid, hide = cfg.forbid, cfg.hide
        p = path
        while True:
            for r in forbid:
                if r.matches(p):
                    return 403
            for r in hide:
                if r.matches(p):
                    return 404
            cut = p.rfind("/")
            if cut <= len(check_root):
                return 0
            p = p[:cut]

    def serve_path(self, request: Request, status: int, path: str, trailing: bool,
                   check_root: str, code_page: bool = False) -> Answer:
        cfg = request.config
        policy: str = cfg.follow_symlinks
        if self._confined and policy != "never":
            policy = INSIDE  # a user's site: no link leads out of the user's directory
        entry = self.cache.get(path, check_root, policy)
        kind = entry.kind
        if kind != FILE and kind != DIR:
            return DO_NOTHING if entry.status == 404 else Next(entry.status)
        ruled = cfg.forbid or cfg.hide
        if ruled:
            r = self._ruled(cfg, path, check_root)
            if r:
                return DO_NOTHING if r == 404 else _FORBIDDEN
        if self.spec.protect.path(path, len(check_root)):
            return DO_NOTHING
        method = request.method
        if kind == FILE:
            if trailing:
                return DO_NOTHING
            if code_page:
                return self._code_page(request, status, path, entry, check_root, policy)
            if method != "GET" and method != "HEAD":
                return Serve(method_not_allowed())
            return self._file(request, path, entry, check_root, policy)
        # a directory
        if code_page:
            return DO_NOTHING
        if method != "GET" and method != "HEAD":
            return Serve(method_not_allowed())
        if not trailing:
            return Serve(slash_redirect(request, request.raw_segments))
        base = path if path != "/" else ""
        for name in cfg.index:
            ipath = base + "/" + name
            ie = self.cache.get(ipath, check_root, policy)
            if ie.kind == FILE:
                if ruled:
                    r = self._ruled(cfg, ipath, check_root)
                    if r:
                        return DO_NOTHING if r == 404 else _FORBIDDEN
                return self._file(request, ipath, ie, check_root, policy)
            if ie.kind != DIR and ie.status == 403:
                return _FORBIDDEN
        if cfg.listdirs:
            return self._listing(request, path, cfg, check_root)
        return DO_NOTHING

    def _open(self, path: str, entry: Entry, check_root: str,
              policy: str) -> tuple[Entry, int, os.stat_result] | int:
        """Open a checked file: ``(entry, fd, stat)``, or a status (404/403/503) on failure."""
        try:
            fd, st = open_file(path, entry, policy)
            return entry, fd, st
        except (OSError, Stale) as first:
            if isinstance(first, OSError) and errno_status(first) != 404:
                return errno_status(first)
        entry = self.cache.refresh(path, check_root, policy)
        if entry.kind != FILE:
            return entry.status if entry.kind != DIR else 404
        try:
            fd, st = open_file(path, entry, policy)
        except Stale:
            return 404
        except OSError as exc:
            return errno_status(exc)
        return entry, fd, st

    def _content_type(self, cfg: SiteConfig, path: str, entry: Entry) -> str:
        memo = entry.ctype  # (config, value): one attribute, so readers never see a torn pair
        if memo is not None and memo[0] is cfg:
            return memo[1]
        ctype = cfg.content_type_header(path)
        entry.ctype = (cfg, ctype)
        return ctype

    def _add_cache_headers(self, items: list[tuple[str, str]]) -> None:
        if self._max_age is not None:
            items.append(("cache-control", self._max_age))
            items.append(("expires", _expires(self.spec.cache or 0)))
        elif self._cache_headers is not None:
            items.extend(self._cache_headers)

    # -- responses -----------------------------------------------------------------------------------
    def _file(self, request: Request, path: str, entry: Entry, check_root: str,
              policy: str) -> Answer:
        spec = self.spec
        cfg = request.config
        encoding = None
        vary = False
        opened = None
        if spec.precompressed:
            available = []
            for coding in spec.precompressed:
                se = self.cache.get(path + SUFFIXES[coding], check_root, policy)
                if se.kind == FILE:
                    available.append((coding, se))
            if available:
                vary = True
                ae = request.headers.get("accept-encoding")
                if ae:
                    encoding = choose(ae, [c for c, _ in available])
                    if encoding is not None:
                        sibling = dict(available)[encoding]
                        opened = self._open(path + SUFFIXES[encoding], sibling, check_root, policy)
                        if type(opened) is int:  # the sibling vanished: serve the original
                            encoding, opened = None, None
        headers = request.headers
        conditions = _has_conditions(headers)
        if opened is None:
            if not conditions:
                kept = self.cache.body(entry, path, policy)
                if kept is not None:  # a small file, answered from memory
                    return Serve(Response(200, Headers.from_lower(
                        self._fields_of_kept(cfg, path, entry, vary)),
                        BytesBody(kept, entry.identity())))
            opened = self._open(path, entry, check_root, policy)
            if type(opened) is int:
                return DO_NOTHING if opened == 404 else Next(opened)
        variant, fd, st = opened  # type: ignore[misc]  # not an int: returned above
        size = st.st_size
        items, etag = self._items(cfg, path, entry, variant, encoding, vary)
        if not conditions:
            kept = self.cache.keep_body(variant, fd, size) if encoding is None else None
            if kept is not None:
                os.close(fd)
                return Serve(Response(200, Headers.from_lower(items),
                                      BytesBody(kept, variant.identity())))
            return Serve(Response(200, Headers.from_lower(items), FileBody(fd, 0, size)))
        ranges_ok = spec.max_ranges > 0
        lm = variant.last_modified()
        mtime = variant.mtime
        cond = conditional.evaluate(request.method, headers, etag, mtime, lm)
        if cond is not None:
            os.close(fd)
            if cond == 304:
                return Serve(Response(304, Headers([i for i in items if i[0] in _KEEP_304])))
            return Serve(error_response(412))
        rng = headers.get("range") if ranges_ok else None
        if rng is not None:
            if_range = headers.get("if-range")
            if if_range is None or conditional.if_range_allows(if_range, etag, mtime, lm):
                ranges = parse_range(rng, size, spec.max_ranges)
                if ranges is UNSATISFIABLE:
                    os.close(fd)
                    resp = error_response(416)
                    resp.headers.add("content-range", f"bytes */{size}")
                    return Serve(resp)
                if ranges is not None:
                    return Serve(self._partial(fd, ranges, size, items))  # type: ignore[arg-type]  # not UNSATISFIABLE: answered above
        return Serve(Response(200, Headers.from_lower(items), FileBody(fd, 0, size)))

    def _fields_of_kept(self, cfg: SiteConfig, path: str, entry: Entry,
                        vary: bool) -> list[tuple[str, str]]:
        """The fields of a file answered from memory (a fresh list: later steps may change
        it), made once per file and configuration (:attr:`_kept_fields`)."""
        key = (entry, path)
        got = self._kept_fields.get(key)
        if got is not None and got[0] is cfg and got[1] is vary:
            return list(got[2])
        items, _ = self._items(cfg, path, entry, entry, None, vary)
        if self._max_age is None:
            kept = self._kept_fields
            if len(kept) >= BODIES:
                kept.clear()
            kept[key] = (cfg, vary, tuple(items))
        return items

    def _items(self, cfg: SiteConfig, path: str, entry: Entry, variant: Entry,
               encoding: str | None, vary: bool) -> tuple[list[tuple[str, str]], str | None]:
        """The header fields of a file's 200 (``variant``: the file sent, ``entry`` or its
        precompressed sibling in ``encoding``), and its entity tag."""
        items = [("content-type", self._content_type(cfg, path, entry)),
                 ("last-modified", variant.last_modified())]
        etag = None
        if not self._no_etag:
            etag = variant.etag()
            if encoding is not None:
                etag = etag[:-1] + "-" + SUFFIXES[encoding][1:] + '"'
            if self._weak:
                etag = "W/" + etag
            items.append(("etag", etag))
        items.append(("accept-ranges", "bytes" if self.spec.max_ranges > 0 else "none"))
        if encoding is not None:
            items.append(("content-encoding", encoding))
        if vary:
            items.append(("vary", "Accept-Encoding"))
        self._add_cache_headers(items)
        return items, etag

    def _partial(self, fd: int, ranges: list[tuple[int, int]], size: int,
                 items: list[tuple[str, str]]) -> Response:
        if len(ranges) == 1:
            first, last = ranges[0]
            items.append(("content-range", content_range(first, last, size)))
            return Response(206, Headers.from_lower(items), FileBody(fd, first, last - first + 1))
        ctype = items[0][1]
        mp = Multipart(fd, ranges, size, ctype)
        items[0] = ("content-type", mp.content_type)
        return Response(206, Headers(items), mp.body())

    def _code_page(self, request: Request, status: int, path: str, entry: Entry,
                   check_root: str, policy: str) -> Answer:
        opened = self._open(path, entry, check_root, policy)
        if type(opened) is int:
            return DO_NOTHING if opened == 404 else Next(opened)
        entry, fd, st = opened  # type: ignore[misc]  # not an int: returned above
        items = [("content-type", self._content_type(request.config, path, entry))]
        self._add_cache_headers(items)
        return Serve(Response(status, Headers.from_lower(items), FileBody(fd, 0, st.st_size)))

    def _listing(self, request: Request, path: str, cfg: SiteConfig, check_root: str) -> Answer:
        protect = self.spec.protect
        hidden = None
        if cfg.hide or cfg.forbid:
            def hidden(p: str) -> bool:
                return (protect.name(p.rsplit("/", 1)[-1])
                        or self._ruled(cfg, p, check_root) != 0)
        elif protect:
            def hidden(p: str) -> bool:
                return protect.name(p.rsplit("/", 1)[-1])
        try:
            entries = listing.read_entries(path, hidden)
        except OSError as exc:
            st = errno_status(exc)
            return DO_NOTHING if st == 404 else Next(st)
        title = "/" + request.sub_path_str
        items = [("content-type", listing.CONTENT_TYPE)]
        self._add_cache_headers(items)
        return Serve(Response(200, Headers(items), StreamBody(listing.render(title, entries))))
