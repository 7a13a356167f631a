"""Where entries live: in memory only (no ``<datadir>``), or in files every worker reads with the
small ones also kept in each worker's memory.

The files are the index: an entry's file name is the SHA-256 of its key, so any worker finds
what another stored with one ``stat``/``open``, with no shared table to lock. A file is written
under ``tmp/`` and renamed into place when complete, so a reader sees a whole entry or none;
a purge is an ``unlink``, seen at once by all. A worker's memory copy of a small entry is used
only while the file still has the inode, size and modification time it was read with.

Least recently used goes first: a hit sets the file's access time; when the total passes
``size``, a scan (in a thread, one at a time) removes the oldest until 90 % of it is left.
With ``inactive``, a scan every so often also removes the files not used for that long. Each
worker counts what it writes since its last scan, so several workers writing at once may pass
the bound by what they wrote in between, until the next scan.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass

import ocsi

from .entry import PREFIX, Meta, decode_vary, encode_vary, header_size

log = logging.getLogger("ocsi.ext.cache")

#: Leftovers of an interrupted write older than this are removed by a scan.
TMP_AGE = 3600.0
#: A hit sets the access time of a file at most this often.
TOUCH_EVERY = 10.0


def vary_values(names: list[str], headers: ocsi.Headers) -> dict[str, str]:
    """The request's values of the fields ``Vary`` names, normalised (RFC 9111 §4.1 allows
    combining field lines and removing whitespace)."""
    out = {}
    for name in names:
        value = ",".join(v.strip() for v in headers.get_all(name))
        out[name] = " ".join(value.split())
    return out


def vary_names(headers: ocsi.Headers) -> list[str]:
    return sorted({n.strip().lower() for n in headers.get_list("vary") if n.strip()})


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(slots=True)
class Hit:
    """A stored response found for a request: its metadata and its body, in memory (``data``)
    or in an open file (``fd``, body at ``offset``). Call :meth:`body` once, or :meth:`close`."""

    meta: Meta
    data: bytes | None = None
    fd: int | None = None
    offset: int = 0
    #: the file, to rewrite it when a 304 refreshes it
    path: str | None = None

    def body(self, start: int = 0, length: int | None = None) -> ocsi.Body:
        if length is None:
            length = self.meta.length - start
        if self.data is not None:
            return ocsi.BytesBody(self.data[start:start + length]) if (start or length != len(
                self.data)) else ocsi.BytesBody(self.data)
        assert self.fd is not None
        fd, self.fd = self.fd, None
        return ocsi.FileBody(fd, self.offset + start, length)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Writer:
    """Receives a body chunk by chunk; :meth:`commit` makes the entry visible, :meth:`discard`
    (or going past ``limit``) drops it. Memory holds at most ``memory_limit`` bytes of it: a
    larger body goes to a file as it comes."""

    def __init__(self, store: Store, meta: Meta, names: list[str] | None, limit: int) -> None:
        self.store = store
        self.meta = meta
        self.names = names
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []
        self.fd: int | None = None
        self.tmp: str | None = None
        self.done = False

    def write(self, chunk: bytes) -> bool:
        """Take a chunk; ``False`` once the entry is dropped (too large, a write failed)."""
        if self.done:
            return False
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            return False
        try:
            if self.fd is None and self.size > self.store.memory_entry:
                if not self.store.has_files:
                    self.discard()
                    return False
                self.fd, self.tmp = self.store.temp_file()
                _write_all(self.fd, self.meta.encode())
                for part in self.parts:
                    _write_all(self.fd, part)
                self.parts = []
            if self.fd is not None:
                _write_all(self.fd, chunk)
            else:
                self.parts.append(chunk)
        except OSError as exc:
            log.warning("cache: cannot write an entry (%s); not stored", exc)
            self.discard()
            return False
        return True

    def commit(self) -> bool:
        if self.done:
            return False
        self.done = True
        self.meta.length = self.size
        try:
            if self.fd is not None:
                fd, self.fd = self.fd, None
                os.close(fd)
                assert self.tmp is not None
                self.store.put_file(self.meta, self.names, self.tmp)
            else:
                self.store.put_bytes(self.meta, self.names, b"".join(self.parts))
        except OSError as exc:
            log.warning("cache: cannot store an entry (%s)", exc)
            self._remove_tmp()
            return False
        finally:
            self.parts = []
        return True

    def discard(self) -> None:
        if self.done:
            return
        self.done = True
        self.parts = []
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.tmp = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Store:
    """Entries in memory only, or in files under ``directory`` (memory keeping the small ones).

    ``memory``: bytes of bodies kept in memory; ``memory_entry``: the largest body kept there;
    ``size``: bytes of files at most (with ``directory``)."""

    def __init__(self, directory: str | None, *, memory: int, memory_entry: int,
                 size: int, inactive: float | None = None) -> None:
        self.directory = directory
        #: files not used for this long are removed by :meth:`sweep` (nginx's ``inactive``)
        self.inactive = inactive
        self._touch_every = TOUCH_EVERY if inactive is None else min(TOUCH_EVERY, inactive / 4)
        self.memory = memory
        self.memory_entry = min(memory_entry, memory)
        self.size = size
        #: memory copies: path (or key, without files) -> (stat identity, meta, body)
        self._front: collections.OrderedDict[str, tuple[tuple[int, int, int], Meta, bytes]] = (
            collections.OrderedDict())
        self._front_bytes = 0
        #: without files, the vary names of each primary key
        self._vary: dict[str, list[str]] = {}
        self._written = 0
        self._scanning = False
        self._touched: dict[str, float] = {}

    @property
    def has_files(self) -> bool:
        return self.directory is not None

    # -- paths -----------------------------------------------------------------------------------
    def open(self) -> None:
        """Make the directories and count what is there (at load time: an error is located)."""
        if self.directory is None:
            return
        os.makedirs(os.path.join(self.directory, "tmp"), mode=0o700, exist_ok=True)
        self._written = self._scan(evict=False)

    def _primary_path(self, primary: str) -> str:
        assert self.directory is not None
        h = _hash(primary)
        return os.path.join(self.directory, h[:2], h)

    def _variant_path(self, primary_path: str, values: dict[str, str]) -> str:
        return primary_path + ".d/" + _hash(json.dumps(sorted(values.items())))

    def temp_file(self) -> tuple[int, str]:
        assert self.directory is not None
        path = os.path.join(self.directory, "tmp", f"{os.getpid()}-{os.urandom(8).hex()}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return fd, path

    # -- lookup ----------------------------------------------------------------------------------
    def lookup(self, primary: str, headers: ocsi.Headers) -> tuple[Hit | None, str]:
        """The entry for the request, else ``None`` and why: ``uri-miss`` (nothing for the
        URL) or ``vary-miss`` (not for these header values)."""
        if self.directory is None:
            names = self._vary.get(primary)
            if names is None:
                return None, "uri-miss"
            mkey = primary + "\0" + json.dumps(sorted(vary_values(names, headers).items()))
            got = self._front.get(mkey)
            if got is None:
                return None, "vary-miss" if names else "uri-miss"
            self._front.move_to_end(mkey)
            return Hit(got[1], data=got[2]), ""
        path = self._primary_path(primary)
        hit, names = self._read(path, primary)
        if names is None:
            return hit, "" if hit is not None else "uri-miss"
        hit, _ = self._read(self._variant_path(path, vary_values(names, headers)), primary)
        if hit is not None and hit.meta.vary != vary_values(names, headers):
            hit.close()
            hit = None
        return hit, "" if hit is not None else "vary-miss"

    def variant(self, primary: str, headers: ocsi.Headers) -> str:
        """What tells this request's variant of ``primary`` apart (its ``Vary`` values), ``""``
        when the key has no variants: requests for other variants do not wait for it."""
        if self.directory is None:
            names = self._vary.get(primary)
        else:
            _, names = self._read(self._primary_path(primary), primary)
        if not names:
            return ""
        return json.dumps(sorted(vary_values(names, headers).items()))

    def _read(self, path: str, primary: str) -> tuple[Hit | None, list[str] | None]:
        """The entry in the file ``path`` or the vary names of a pointer there."""
        try:
            st = os.stat(path)
        except OSError:
            self._drop_front(path)
            return None, None
        ident = (st.st_ino, st.st_mtime_ns, st.st_size)
        front = self._front.get(path)
        if front is not None and front[0] == ident:
            self._front.move_to_end(path)
            self._touch(path, st)
            return Hit(front[1], data=front[2], path=path), None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None, None
        try:
            head = os.pread(fd, 4096, 0)
            names = decode_vary(head)
            if names is not None:
                os.close(fd)
                self._touch(path, st)  # in use as long as a variant is
                return None, names
            size = header_size(head)
            if size is None:
                raise ValueError("not an entry")
            raw = head[PREFIX:PREFIX + size]
            if len(raw) < size:
                raw += os.pread(fd, size - len(raw), PREFIX + len(raw))
            meta = Meta.decode(raw)
            if meta.key != primary:  # a hash collision, or a foreign file
                os.close(fd)
                return None, None
            offset = PREFIX + size
            meta.length = os.fstat(fd).st_size - offset
            if meta.length < 0:
                raise ValueError("truncated")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            os.close(fd)
            log.warning("cache: %s is not a valid entry (%s); removed", path, exc)
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None, None
        self._touch(path, st)
        if meta.length <= self.memory_entry:
            data = os.pread(fd, meta.length, offset) if meta.length else b""
            os.close(fd)
            if len(data) != meta.length:
                return None, None
            self._keep_front(path, ident, meta, data)
            return Hit(meta, data=data, path=path), None
        return Hit(meta, fd=fd, offset=offset, path=path), None

    def _touch(self, path: str, st: os.stat_result) -> None:
        now = time.time()
        if now - st.st_atime < self._touch_every:
            return
        with contextlib.suppress(OSError):
            os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))

    # -- memory ----------------------------------------------------------------------------------
    def _keep_front(self, name: str, ident: tuple[int, int, int], meta: Meta, data: bytes) -> None:
        if len(data) > self.memory_entry:
            return
        self._drop_front(name)
        self._front[name] = (ident, meta, data)
        self._front_bytes += len(data) + 512
        while self._front_bytes > self.memory and self._front:
            old, (_, _, odata) = self._front.popitem(last=False)
            self._front_bytes -= len(odata) + 512

    def _drop_front(self, name: str) -> None:
        got = self._front.pop(name, None)
        if got is not None:
            self._front_bytes -= len(got[2]) + 512

    # -- storing ---------------------------------------------------------------------------------
    def writer(self, meta: Meta, names: list[str], limit: int) -> Writer:
        return Writer(self, meta, names, limit)

    def put_bytes(self, meta: Meta, names: list[str] | None, data: bytes) -> None:
        if self.directory is None:
            names = names or []
            if self._vary.get(meta.key) != names:
                self._forget(meta.key)
                self._vary[meta.key] = names
            mkey = meta.key + "\0" + json.dumps(sorted(meta.vary.items()))
            self._keep_front(mkey, (0, 0, 0), meta, data)
            if len(self._vary) > 4 * len(self._front) + 1024:  # names of evicted keys
                live = {k.split("\0", 1)[0] for k in self._front}
                self._vary = {k: v for k, v in self._vary.items() if k in live}
            return
        fd, tmp = self.temp_file()
        try:
            _write_all(fd, meta.encode() + data)
        finally:
            os.close(fd)
        self.put_file(meta, names, tmp)

    def put_file(self, meta: Meta, names: list[str] | None, tmp: str) -> None:
        """Rename ``tmp`` (the metadata, then the body) into place."""
        primary = self._primary_path(meta.key)
        os.makedirs(os.path.dirname(primary), exist_ok=True)
        if names:
            pointer = encode_vary(names)
            try:
                with open(primary, "rb") as f:
                    current = f.read(len(pointer) + 1)
            except OSError:
                current = b""
            if current != pointer:
                pfd, ptmp = self.temp_file()
                try:
                    _write_all(pfd, pointer)
                finally:
                    os.close(pfd)
                os.replace(ptmp, primary)
            final = self._variant_path(primary, meta.vary)
            os.makedirs(os.path.dirname(final), exist_ok=True)
        else:
            final = primary
        # the access time set to the nanosecond: the kernel's own is as coarse as its clock
        # tick, and entries stored within one tick would tie for the least recently used
        with contextlib.suppress(OSError):
            now = time.time_ns()
            os.utime(tmp, ns=(now, now))
        os.replace(tmp, final)
        self._drop_front(final)
        self._written += meta.length + PREFIX
        if self._written > self.size:
            self._schedule_scan()

    def refresh(self, hit: Hit, meta: Meta) -> None:
        """Store ``meta`` (headers and times updated by a 304) for the body of ``hit``."""
        try:
            if self.directory is None or hit.path is None:
                if hit.data is not None:
                    names = self._vary.get(meta.key) if self.directory is None else None
                    self.put_bytes(meta, names, hit.data)
                return
            names = list(meta.vary) if meta.vary else None
            if hit.data is not None:
                self.put_bytes(meta, names, hit.data)
                return
            if hit.fd is None:
                return
            fd, tmp = self.temp_file()
            try:
                _write_all(fd, meta.encode())
                _copy(hit.fd, fd, meta.length, hit.offset)
            finally:
                os.close(fd)
            self.put_file(meta, names, tmp)
        except OSError as exc:
            log.warning("cache: cannot refresh an entry (%s)", exc)

    # -- the lock between workers ----------------------------------------------------------------
    def _lock_path(self, primary: str) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, "locks", _hash(primary))

    def try_lock(self, primary: str, older_than: float) -> bool:
        """Claim the fetching of ``primary`` for this worker (a file made with ``O_EXCL``);
        ``False`` while another holds it. A claim older than ``older_than`` seconds is taken
        over (its worker died or is stuck). ``True`` without files."""
        if self.directory is None:
            return True
        path = self._lock_path(primary)
        for _ in range(2):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                 0o600))
                return True
            except FileExistsError:
                try:
                    if time.time() - os.stat(path).st_mtime < older_than:
                        return False
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            except OSError:
                return True  # no lock to be had: fetch without it
        return True

    def locked(self, primary: str) -> bool:
        return self.directory is not None and os.path.exists(self._lock_path(primary))

    def unlock(self, primary: str) -> None:
        if self.directory is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._lock_path(primary))

    # -- removing --------------------------------------------------------------------------------
    def purge(self, primary: str) -> bool:
        """Remove every variant of ``primary``; whether there was something."""
        if self.directory is None:
            found = self._forget(primary)
            self._vary.pop(primary, None)
            return found
        path = self._primary_path(primary)
        found = False
        try:
            os.unlink(path)
            found = True
        except OSError:
            pass
        if os.path.isdir(path + ".d"):
            shutil.rmtree(path + ".d", ignore_errors=True)
            found = True
        self._drop_front(path)
        return found

    def _forget(self, primary: str) -> bool:
        prefix = primary + "\0"
        keys = [k for k in self._front if k.startswith(prefix)]
        for k in keys:
            self._drop_front(k)
        return bool(keys)

    def clear(self) -> None:
        """Empty the cache for every worker: the directory is renamed away, then removed."""
        self._front.clear()
        self._front_bytes = 0
        self._vary.clear()
        if self.directory is None or not os.path.isdir(self.directory):
            return
        trash = f"{self.directory}.cleared-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            os.rename(self.directory, trash)
        except OSError as exc:
            log.warning("cache: cannot clear %s (%s)", self.directory, exc)
            return
        os.makedirs(os.path.join(self.directory, "tmp"), mode=0o700, exist_ok=True)
        shutil.rmtree(trash, ignore_errors=True)
        self._written = 0

    # -- bounding the files ----------------------------------------------------------------------
    async def sweep(self) -> None:
        """Remove the files not used for ``inactive`` seconds (and bound the total), in a
        thread; nothing when a scan is already running."""
        if self.directory is None or self._scanning:
            return
        self._scanning = True
        try:
            self._written = await asyncio.to_thread(self._scan, True)
        finally:
            self._scanning = False

    def _schedule_scan(self) -> None:
        if self._scanning:
            return
        self._scanning = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._written = self._scan(evict=True)
            self._scanning = False
            return

        async def run() -> None:
            try:
                self._written = await asyncio.to_thread(self._scan, True)
            finally:
                self._scanning = False

        _tasks.add(task := loop.create_task(run()))
        task.add_done_callback(_tasks.discard)

    def _scan(self, evict: bool) -> int:
        """The bytes the files take; with ``evict``, first remove the least recently used
        until 90 % of ``size`` is left (and old leftovers of interrupted writes)."""
        assert self.directory is not None
        files: list[tuple[float, int, str]] = []
        total = 0
        now = time.time()
        for root, _dirs, names in os.walk(self.directory):
            in_tmp = os.path.basename(root) in ("tmp", "locks")
            for name in names:
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if in_tmp:
                    if evict and now - st.st_mtime > TMP_AGE:
                        with contextlib.suppress(OSError):
                            os.unlink(path)
                    continue
                if evict and self.inactive is not None and now - st.st_atime > self.inactive:
                    with contextlib.suppress(OSError):
                        os.unlink(path)  # (a memory copy goes at its next stat: not here,
                        continue         # this runs in a thread)
                files.append((st.st_atime, st.st_size, path))
                total += st.st_size
        if not evict or total <= self.size:
            return total
        files.sort()
        target = self.size * 9 // 10
        for _atime, size, path in files:
            if total <= target:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size
        log.info("cache: %s evicted down to %d bytes", self.directory, total)
        return total


_tasks: set[asyncio.Task[None]] = set()


def _copy(src: int, dst: int, length: int, offset: int = 0) -> None:
    """Copy ``length`` bytes from ``src`` at ``offset`` to ``dst``, in bounded pieces."""
    pos = offset
    end = offset + length
    while pos < end:
        data = os.pread(src, min(1024 * 1024, end - pos), pos)
        if not data:
            raise OSError("entry shorter than its metadata says")
        _write_all(dst, data)
        pos += len(data)
