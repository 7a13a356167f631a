"""MIME types by file extension: a built-in table, and Apache ``mime.types`` files.

Ocsigen 7 ignores ``<mimefile>`` for static files (spec §7.3); ocsi reads it, and falls back to
a modern built-in table (JSON, WebAssembly, fonts, modern images…) when none is configured.

Private: not part of the extension API.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

DEFAULT_TYPE = "application/octet-stream"

_BUILTIN: dict[str, str] = {}
for _type, _exts in {
    "text/html": "html htm shtml xhtml",
    "text/css": "css",
    "text/plain": "txt text log conf ini md markdown rst asc",
    "text/csv": "csv",
    "text/xml": "xml xsl",
    "text/javascript": "js mjs",
    "text/calendar": "ics",
    "text/vcard": "vcf",
    "text/x-python": "py",
    "text/x-c": "c h",
    "application/json": "json map",
    "application/ld+json": "jsonld",
    "application/manifest+json": "webmanifest",
    "application/wasm": "wasm",
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/gzip": "gz tgz",
    "application/x-bzip2": "bz2",
    "application/x-xz": "xz",
    "application/zstd": "zst",
    "application/x-tar": "tar",
    "application/x-7z-compressed": "7z",
    "application/rtf": "rtf",
    "application/xhtml+xml": "xht",
    "application/atom+xml": "atom",
    "application/rss+xml": "rss",
    "application/postscript": "ps eps ai",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/java-archive": "jar",
    "application/octet-stream": "bin exe dll iso img",
    "image/png": "png",
    "image/jpeg": "jpg jpeg jpe",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/svg+xml": "svg svgz",
    "image/x-icon": "ico",
    "image/bmp": "bmp",
    "image/tiff": "tif tiff",
    "font/woff": "woff",
    "font/woff2": "woff2",
    "font/ttf": "ttf",
    "font/otf": "otf",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg oga",
    "audio/wav": "wav",
    "audio/flac": "flac",
    "audio/aac": "aac",
    "video/mp4": "mp4 m4v",
    "video/webm": "webm",
    "video/ogg": "ogv",
    "video/quicktime": "mov",
    "video/x-msvideo": "avi",
}.items():
    for _ext in _exts.split():
        _BUILTIN[_ext] = _type

BUILTIN_TYPES: Mapping[str, str] = MappingProxyType(_BUILTIN)


def parse_mime_types(text: str) -> dict[str, str]:
    """Parse Apache's format: ``type ext1 ext2`` per line, ``#`` comments."""
    table: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            for ext in fields[1:]:
                table[ext.lower()] = fields[0]
    return table


def load_mime_file(path: str) -> Mapping[str, str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return MappingProxyType(parse_mime_types(f.read()))


def extension_of(name: str) -> str:
    """Lower-cased extension without the dot (``""`` when none; dotfiles have none)."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot + 1 :].lower() if dot > 0 else ""


def is_textual(content_type: str) -> bool:
    """Types that get the configured charset appended (``text/*``, ``*/xml``, ``*+xml``, JSON, JS)."""
    t = content_type.split(";", 1)[0].strip().lower()
    return (
        t.startswith("text/")
        or t.endswith("/xml")
        or t.endswith("+xml")
        or t in ("application/json", "application/javascript", "application/manifest+json")
    )
