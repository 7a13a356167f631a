"""From request segments to a file: path building, the symlink policy, errno mapping.

Safety rests on three rules, applied in this order:

1. **Segments.** The core has already removed dot-segments (``..`` and ``%2e%2e`` alike) and
   percent-decoded each segment once. A decoded segment that still contains ``/``, ``\\`` or
   NUL (from ``%2F``, ``%5C``, ``%00``), or that is ``.``/``..``, makes the request "not
   concerned" (404): :func:`path_of_segments` returns ``None``. Nothing is ever re-split.
2. **Containment.** Directory mode joins the root and the checked segments, so the path is
   below the root by construction. Regexp mode normalises the substituted ``dest``: a ``..``
   component gives 403, and with ``root=`` a path that is not the root or below ``root + "/"``
   (component-wise, so ``/srv/www2`` is *not* inside ``/srv/www``) gives 403 (:func:`inside`).
3. **Symlinks.** Every component below the check root is ``lstat``-ed (policies ``never``,
   ``ownermatch`` and ``inside``): ``never`` refuses any link, ``ownermatch`` a link whose owner
   differs from its target's owner (403), ``inside`` (a user's directory, userconf) that or a
   link whose target, fully resolved, is not inside the check root (403), so no link, whoever
   owns it, leads a user's site out of its directory. ``always`` does no check. The final file is opened with
   ``O_NOFOLLOW`` unless it was an accepted link, and its ``fstat`` must be the inode that was
   checked, so a file swapped for a link after the check is caught.

Errors: ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG and other "no such thing" errnos are *not found*
(404, ``Next(previous status)``); EACCES and EPERM are 403; EMFILE/ENFILE are 503 (the server
is out of descriptors, the file is fine). Nothing here raises to the pipeline, so never a 500.
Only regular files are opened (``O_NONBLOCK``, so a FIFO swapped in cannot block the loop);
FIFOs, sockets and devices are not found.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod

log = logging.getLogger("ocsi.ext.staticmod")

FILE, DIR, MISS = 1, 2, 3

_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_FLAGS_NOFOLLOW = _FLAGS | getattr(os, "O_NOFOLLOW", 0)

_FORBIDDEN_ERRNOS = {errno.EACCES, errno.EPERM}
_BUSY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM}
_QUIET_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.ENXIO,
                 errno.ENODEV, errno.EINVAL, errno.EISDIR, errno.ESTALE}


class Entry:
    """What a path is, as checked under a symlink policy (cached for a short time).

    ``kind`` is :data:`FILE`, :data:`DIR` or :data:`MISS`; ``status`` is 404/403/503 for
    misses; ``link`` tells that the final component is an accepted symlink (open it following
    links). For files, the inode and validators are kept so a cached entry can be checked
    against the ``fstat`` of each open.
    """

    __slots__ = ("kind", "status", "link", "ino", "dev", "size", "mtime_ns", "_etag", "_lm",
                 "ctype")

    def __init__(self, kind: int, status: int = 200, st: os.stat_result | None = None,
                 link: bool = False) -> None:
        self.kind = kind
        self.status = status
        self.link = link
        self._etag: str | None = None
        self._lm: str | None = None
        #: ``(config, Content-Type)`` memo of the last scope configuration that asked.
        self.ctype: tuple[object, str] | None = None
        if st is not None:
            self.ino = st.st_ino
            self.dev = st.st_dev
            self.size = st.st_size
            self.mtime_ns = st.st_mtime_ns
        else:
            self.ino = self.dev = self.size = self.mtime_ns = 0

    def refresh(self, st: os.stat_result) -> None:
        """The file changed in place (same inode): new validators."""
        if st.st_size != self.size or st.st_mtime_ns != self.mtime_ns:
            self.size = st.st_size
            self.mtime_ns = st.st_mtime_ns
            self._etag = self._lm = None

    def identity(self) -> tuple[int, int, int, int]:
        """``(device, inode, size, modification time in ns)``: which file, in which state."""
        return (self.dev, self.ino, self.size, self.mtime_ns)

    @property
    def mtime(self) -> int:
        """Modification time in whole seconds (the resolution of HTTP dates)."""
        return self.mtime_ns // 1_000_000_000

    def etag(self) -> str:
        """Strong validator: ``"<mtime ns hex>-<size hex>"`` (no inode: equal on every replica)."""
        if self._etag is None:
            self._etag = f'"{self.mtime_ns:x}-{self.size:x}"'
        return self._etag

    def last_modified(self) -> str:
        if self._lm is None:
            from ocsi.httputil import format_http_date

            self._lm = format_http_date(self.mtime)
        return self._lm

    def __repr__(self) -> str:
        kind = {FILE: "file", DIR: "dir", MISS: "miss"}[self.kind]
        return f"<Entry {kind} {self.status}{' link' if self.link else ''}>"


NOT_FOUND = Entry(MISS, 404)
FORBIDDEN = Entry(MISS, 403)
BUSY = Entry(MISS, 503)


def errno_status(exc: OSError) -> int:
    """404 for "no such thing", 403 for permission errors, 503 when out of descriptors."""
    code = exc.errno
    if code in _FORBIDDEN_ERRNOS:
        return 403
    if code in _BUSY_ERRNOS:
        log.error("staticmod: %s", os.strerror(code or 0))
        return 503
    if code not in _QUIET_ERRNOS:
        log.warning("staticmod: unexpected error %s, answered as not found",
                    errno.errorcode.get(code or 0, code))
    return 404


def _miss(exc: OSError) -> Entry:
    status = errno_status(exc)
    return NOT_FOUND if status == 404 else FORBIDDEN if status == 403 else BUSY


def bad_segment(seg: str) -> bool:
    return "/" in seg or "\\" in seg or "\x00" in seg or seg == ".." or seg == "."


def path_of_segments(root: str, segments: tuple[str, ...]) -> tuple[str, bool] | None:
    """``(path, trailing_slash)`` below ``root`` (no trailing ``/``; ``""`` means ``/``).

    ``None`` when a segment is unsafe (see module docs).
    """
    if not segments:
        return None  # "OPTIONS *" and friends name no file
    trailing = segments[-1] == ""
    names = segments[:-1] if trailing else segments
    for seg in names:
        if not seg or bad_segment(seg):
            return None
    if not names:
        return root or "/", trailing
    return root + "/" + "/".join(names), trailing


def normalise(path: str) -> tuple[str, bool] | None:
    """Clean an absolute path built from a template: ``(path, trailing)``, ``None`` on ``..``.

    Empty and ``.`` components are dropped; NUL is refused as well.
    """
    if "\x00" in path:
        return None
    trailing = path.endswith("/") and path != "/"
    out = []
    for part in path.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            return None
        out.append(part)
    return "/" + "/".join(out), trailing


def inside(path: str, root: str) -> bool:
    """Component-wise containment: ``/srv/www/x`` is inside ``/srv/www``, ``/srv/www2`` is not.

    ``root`` has no trailing slash; ``""`` is ``/`` (everything is inside).
    """
    return root == "" or path == root or path.startswith(root + "/")


#: The policy staticmod uses in a user's directory (userconf) where the scope says
#: ``ownermatch``: owners must match and the target must stay inside the check root.
INSIDE = "inside"


def _link_ok(path: str, lst: os.stat_result, policy: str,
             check_root: str) -> os.stat_result | Entry:
    """The target's stat when the link at ``path`` is acceptable, else a miss entry."""
    if policy == "never":
        return FORBIDDEN
    try:
        st = os.stat(path)
    except OSError as exc:
        return _miss(exc)
    if st.st_uid != lst.st_uid:
        return FORBIDDEN
    if policy == INSIDE and not inside(os.path.realpath(path), os.path.realpath(check_root or "/")
                                       .rstrip("/")):
        return FORBIDDEN
    return st


def lookup(path: str, check_root: str, policy: str) -> Entry:
    """Check ``path`` (absolute, normalised, inside ``check_root``) under ``policy``.

    Components strictly below ``check_root`` are checked for symlinks; the check root itself
    and what is above it are trusted (an administrator may symlink the document root).
    """
    st: os.stat_result | None = None
    try:
        if policy == "always":
            st = os.stat(path)
            link = False
        else:
            if check_root:
                rel = path[len(check_root) + 1 :] if len(path) > len(check_root) else ""
                cur = check_root
            else:
                rel = path[1:]
                cur = ""
            link = False
            if rel:
                parts = rel.split("/")
                last = len(parts) - 1
                for i, part in enumerate(parts):
                    cur = cur + "/" + part
                    lst = os.lstat(cur)
                    if stat_mod.S_ISLNK(lst.st_mode):
                        res = _link_ok(cur, lst, policy, check_root)
                        if isinstance(res, Entry):
                            return res
                        if i == last:
                            st, link = res, True
                    elif i == last:
                        st = lst
            if st is None:  # the check root itself
                st = os.stat(path)
    except OSError as exc:
        return _miss(exc)
    assert st is not None  # every branch above stats the path or returns
    mode = st.st_mode
    if stat_mod.S_ISREG(mode):
        return Entry(FILE, 200, st, link)
    if stat_mod.S_ISDIR(mode):
        return Entry(DIR, 200, st, link)
    return NOT_FOUND


class Stale(Exception):
    """The file is not the one that was checked (replaced, turned into a link…)."""


def open_file(path: str, entry: Entry, policy: str) -> tuple[int, os.stat_result]:
    """Open the checked file: ``(fd, fstat)``; raises ``OSError`` or :class:`Stale`."""
    fd = os.open(path, _FLAGS if (entry.link or policy == "always") else _FLAGS_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode) or st.st_ino != entry.ino or st.st_dev != entry.dev:
            raise Stale(path)
    except BaseException:
        os.close(fd)
        raise
    entry.refresh(st)
    return fd, st
