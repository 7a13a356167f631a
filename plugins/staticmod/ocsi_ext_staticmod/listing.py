"""Directory listings (``<listdirs value="true"/>``): Ocsigen's HTML shape, streamed.

The page is Ocsigen 7's (spec §4.1)::

    <!DOCTYPE html>
    <html xmlns="http://www.w3.org/1999/xhtml"><head><title>Directory listing for /SUB</title>
    </head><body><h1>Directory listing for /SUB</h1><ul><li><a href="ENC">NAME</a></li>…</ul>
    </body></html>

(on two lines only: one line break after the doctype). Entries are every name except ``.`` and
``..`` (dotfiles included), sorted by bytes; ``href`` is the percent-encoded name (only
``A-Za-z0-9-._~`` kept), the text is HTML-escaped (``& < > " '`` and control characters as
``&#N;``). Two deliberate differences from Ocsigen: names hidden or forbidden by
``<hidefile>``/``<forbidfile>`` are not listed, and directories get a trailing ``/`` (in the
link, which saves a redirect, and in the text), as nginx's autoindex does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable
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


def read_entries(path: str, hidden: Callable[[str], bool] | None = None) -> list[tuple[str, bool]]:
    """``[(name, is_dir)]`` of ``path``, sorted by bytes; raises ``OSError``.

    ``hidden(full_path)`` filters entries out (hidefile/forbidfile rules).
    """
    base = path.rstrip("/")
    out: list[tuple[str, bool]] = []
    with os.scandir(path) as it:
        for e in it:
            if hidden is not None and hidden(base + "/" + e.name):
                continue
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            out.append((e.name, is_dir))
    out.sort(key=lambda item: os.fsencode(item[0]))
    return out


def head(title_path: str) -> bytes:
    t = escape_html(_display(title_path))
    return (f'<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml"><head><title>'
            f"Directory listing for {t}</title></head><body><h1>Directory listing for {t}"
            f"</h1><ul>").encode("utf-8")


TAIL = b"</ul></body></html>"


def item(name: str, is_dir: bool) -> str:
    slash = "/" if is_dir else ""
    return f'<li><a href="{href(name)}{slash}">{escape_html(_display(name))}{slash}</a></li>'


async def render(title_path: str, entries: Iterable[tuple[str, bool]]) -> AsyncIterator[bytes]:
    """The page in chunks of :data:`BATCH` entries."""
    yield head(title_path)
    batch: list[str] = []
    for name, is_dir in entries:
        batch.append(item(name, is_dir))
        if len(batch) >= BATCH:
            yield "".join(batch).encode("utf-8")
            batch = []
    if batch:
        yield "".join(batch).encode("utf-8")
    yield TAIL


async def render_bytes(title_path: str, entries: Iterable[tuple[str, bool]]) -> bytes:
    """The whole page at once (tests and small tools)."""
    return b"".join([c async for c in render(title_path, entries)])
