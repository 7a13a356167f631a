r"""ocsi-ext-staticmod: ``<static>``, static files served as a modern file server would.

Configuration: ``<extension findlib-package="ocsi-ext-staticmod"/>`` (Ocsigen's
``ocsigenserver.ext.staticmod`` works too), then ``<static dir="/var/www"/>`` in a host or
site. See README.md for every attribute.

Python API (no XML)::

    from ocsi_ext_staticmod import static
    step = static(dir="/var/www", cache=60, precompressed=("br", "gzip"))
    step = static(regexp="img/(.*)", dest=r"/srv/img/\1")
    step = static(code="404", dest="/srv/errors/404.html")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import ocsi
from ocsi import Element, LoadContext, ParseContext

from .cache import FileCache, clear_all, default_cache
from .parse import DEFAULT_MAX_RANGES, StaticSpec, make_spec, parse_options, parse_static
from .serve import serve_document
from .steps import Static

DISTRIBUTION = "ocsi-ext-staticmod"

__all__ = ["DISTRIBUTION", "FileCache", "Static", "StaticSpec", "clear_all", "default_cache",
           "make_spec", "serve_document", "static"]


def static(
    dir: str | None = None,
    *,
    regexp: str | None = None,
    dest: str | None = None,
    code: str | None = None,
    root: str | None = None,
    cache: int | str | None = None,
    precompressed: Iterable[str] | str = (),
    etag: str = "strong",
    max_ranges: int = DEFAULT_MAX_RANGES,
    file_cache: FileCache | None = None,
) -> Static:
    """A ``<static>`` step built from Python; same rules as the XML (raises ``ValueError``).

    ``cache`` is seconds (``0`` or ``"no"``: ``no-cache``); ``precompressed`` lists codings
    among ``br``, ``zstd``, ``gzip``; ``file_cache`` defaults to a process-wide cache.
    """
    from .parse import parse_cache, parse_precompressed

    if isinstance(cache, str):
        cache = parse_cache(cache)
    if isinstance(precompressed, str):
        pre = parse_precompressed(precompressed)
    else:
        pre = parse_precompressed(" ".join(precompressed))
    spec = make_spec(dir=dir, regexp=regexp, dest=dest, code=code, root=root, cache=cache,
                     precompressed=pre, etag=etag, max_ranges=max_ranges)
    return Static(spec, file_cache, where="<python>")


def _options_cache(ctx: ParseContext) -> FileCache | None:
    for key in (DISTRIBUTION, "staticmod", __name__):
        value = ctx.options(key)
        if isinstance(value, FileCache):
            return value
    return None


@ocsi.documents(ocsi.ElementDoc(
    "static", "serves files: from a directory (dir), at a path computed from the URL (regexp, dest) "
    "or as the page of an error status (code, dest)",
    attributes=[
        ocsi.AttributeDoc("dir", "directory mode: the file is this directory + the request's sub-path"),
        ocsi.AttributeDoc("regexp", "regexp mode: anchored pattern on the decoded sub-path"),
        ocsi.AttributeDoc("dest", r"the file, a template: \N group N, $u(user) a home directory"),
        ocsi.AttributeDoc("code", "only for statuses matching this pattern (40.): an error page"),
        ocsi.AttributeDoc("root", "regexp mode: the file must be inside it (symlink checks start there)",
                          "`/`"),
        ocsi.AttributeDoc("cache", "seconds of Cache-Control max-age; 0 or no: no-cache", "no header"),
        ocsi.AttributeDoc("precompressed", "serve FILE.br, FILE.zst, FILE.gz beside FILE to clients "
                          "accepting that coding (br zstd gzip)", "none"),
        ocsi.AttributeDoc("etag", "strong, weak or off", "`strong`"),
        ocsi.AttributeDoc("maxranges", "most ranges in one Range header; 0 disables ranges", "`16`"),
    ]))
def _parse(el: Element, ctx: ParseContext) -> Static:
    return Static(parse_static(el, ctx), _options_cache(ctx), where=el.where)


# -- hooks -------------------------------------------------------------------------------------------
@ocsi.hookimpl
def ocsi_elements() -> Mapping[str, Any]:
    return {"static": _parse}


@ocsi.hookimpl
@ocsi.documents(ocsi.ElementDoc(
    "filecache", "how long and how many path resolutions (checks, index, siblings) are remembered",
    attributes=[ocsi.AttributeDoc("ttl", "duration; 0 disables the cache", "`1`"),
                ocsi.AttributeDoc("entries", "most paths remembered", "`4096`")]))
def ocsi_extension_options(options: list[Element], ctx: LoadContext) -> FileCache:
    return parse_options(options, ctx)


@ocsi.hookimpl
def ocsi_clear_caches() -> None:
    clear_all()


@ocsi.hookimpl
def ocsi_reloaded(server: Any, ok: bool, error: BaseException | None) -> None:
    clear_all()
