"""Directory listings (``<listdirs value="true"/>``): Ocsigen's HTML shape, streamed.

The page is Ocsigen 7's (spec §4.1)::

    <!DOCTYPE html>
    <html xmlns="http://www.w3.org/1999/xhtml"><head><title>Directory listing for /SUB</title>
    </head><body><h1>Directory listing for /SUB</h1><ul><li><a href="ENC">NAME</a></li>…</ul>
    </body></html>

(on two lines only: one line break after the doctype). Entries are every name except ``.`` and
``..`` (dotfiles included), sorted by bytes; ``href`` is the percent-encoded name (only
``A-Za-z0-9-._~`` kept), the text is HTML-escaped (``& < > " '`` and control characters as
``&#N;``). Deliberate differences from Ocsigen, for people browsing a directory as they would
with nginx's autoindex or ``python -m http.server``:

- names hidden or forbidden by ``<hidefile>``/``<forbidfile>`` are not listed;
- directories get a trailing ``/`` (in the link, which saves a redirect, and in the text);
- below the site's root, a first entry ``../`` leads to the parent;
- after each link, its size in bytes (``-`` for a directory) and its modification time in UTC::

      <li><a href="ENC">NAME</a> <span class="size">1100</span> <time datetime="2026-12-06T01:02:03Z">2026-12-06 01:02</time></li>
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import NamedTuple
from urllib.parse import quote

BATCH = 256
CONTENT_TYPE = "text/html; charset=utf-8"


def escape_html(text: str) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == '"':
            out.append("&quot;")
        elif ch == "'":
            out.append("&#39;")
        elif o < 32 or o == 127:
            out.append(f"&#{o};")
        else:
            out.append(ch)
    return "".join(out)


def _display(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace")


def href(name: str) -> str:
    return quote(os.fsencode(name), safe="")


class Entry(NamedTuple):
    """One listed name; ``size`` and ``mtime`` are ``None`` when it cannot be examined (a
    dangling link)."""

    name: str
    is_dir: bool
    size: int | None = None
    mtime: float | None = None


def read_entries(path: str, hidden: Callable[[str], bool] | None = None) -> list[Entry]:
    """The entries of ``path``, sorted by bytes; raises ``OSError``.

    ``hidden(full_path)`` filters entries out (hidefile/forbidfile rules).
    """
    base = path.rstrip("/")
    out: list[Entry] = []
    with os.scandir(path) as it:
        for e in it:
            if hidden is not None and hidden(base + "/" + e.name):
                continue
            try:
                st = e.stat()
            except OSError:
                out.append(Entry(e.name, False))
                continue
            is_dir = e.is_dir()
            out.append(Entry(e.name, is_dir, None if is_dir else st.st_size, st.st_mtime))
    out.sort(key=lambda item: os.fsencode(item.name))
    return out


def head(title_path: str) -> bytes:
    t = escape_html(_display(title_path))
    return (f'<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml"><head><title>'
            f"Directory listing for {t}</title></head><body><h1>Directory listing for {t}"
            f"</h1><ul>").encode("utf-8")


TAIL = b"</ul></body></html>"
PARENT = '<li><a href="../">../</a></li>'


def item(entry: Entry) -> str:
    slash = "/" if entry.is_dir else ""
    size = "-" if entry.size is None else str(entry.size)
    when = ""
    if entry.mtime is not None:
        t = time.gmtime(entry.mtime)
        when = (f' <time datetime="{time.strftime("%Y-%m-%dT%H:%M:%SZ", t)}">'
                f'{time.strftime("%Y-%m-%d %H:%M", t)}</time>')
    return (f'<li><a href="{href(entry.name)}{slash}">{escape_html(_display(entry.name))}{slash}'
            f'</a> <span class="size">{size}</span>{when}</li>')


async def render(title_path: str, entries: Iterable[Entry]) -> AsyncIterator[bytes]:
    """The page in chunks of :data:`BATCH` entries (a link to the parent first, but at
    ``/``)."""
    yield head(title_path)
    batch: list[str] = [PARENT] if title_path.rstrip("/") else []
    for entry in entries:
        batch.append(item(entry))
        if len(batch) >= BATCH:
            yield "".join(batch).encode("utf-8")
            batch = []
    if batch:
        yield "".join(batch).encode("utf-8")
    yield TAIL


async def render_bytes(title_path: str, entries: Iterable[Entry]) -> bytes:
    """The whole page at once (tests and small tools)."""
    return b"".join([c async for c in render(title_path, entries)])
