"""Request-target parsing: split, remove dot-segments, percent-decode.

Ocsigen matches and maps still-encoded paths, which makes names with spaces or UTF-8
unreachable (spec §3.2). ocsi decodes each segment once, here, after removing dot-segments from
both the raw and the decoded form, so ``%2e%2e`` is treated exactly like ``..`` and can never
climb above the root. A decoded segment may still contain ``/`` or ``\\`` (from ``%2F``,
``%5C``); the core keeps them as they are (segments are a tuple, never re-joined) and
file-serving extensions refuse them.

A control character once decoded (``%00``-``%1F``, ``%7F``) makes the request a 400 before
any step sees it. nginx refuses ``%00`` only; ocsi refuses the others too because nothing
legitimate names a resource with them, while a guard written for the path (a regexp whose
``.`` or ``$`` treats a newline specially, a header or log line built from it) may not expect
them. Configuration regexps also match ``.`` as any character (ocsi._config.regex): either
measure alone closes ``/admin%0a/secret`` walking past ``<path regexp="admin.*">``.

Private: not part of the extension API.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]").search


class BadTarget(ValueError):
    """The request-target cannot be served (answered with 400)."""


def split_target(target: str) -> tuple[str, str | None, str | None, str | None]:
    """Return ``(raw_path, query, scheme, authority)`` for origin-form or absolute-form targets.

    The fragment is never sent by clients; if present it is dropped.
    """
    scheme = authority = None
    if not target.startswith("/"):
        if target == "*":
            return "*", None, None, None
        low = target[:8].lower()
        if low.startswith("http://") or low.startswith("https://"):
            scheme, rest = target.split("://", 1)
            scheme = scheme.lower()
            slash = rest.find("/")
            qmark = rest.find("?")
            cut = min(i for i in (slash, qmark, len(rest)) if i >= 0)
            authority, target = rest[:cut], rest[cut:] or "/"
            if target.startswith("?"):
                target = "/" + target
        else:
            raise BadTarget("request-target must start with '/' or be an absolute URL")
    hash_at = target.find("#")
    if hash_at >= 0:
        target = target[:hash_at]
    q = target.find("?")
    if q >= 0:
        return target[:q], target[q + 1 :], scheme, authority
    return target, None, scheme, authority


def _decode(segment: str) -> str:
    if "%" not in segment:
        return segment
    raw = unquote_to_bytes(segment)
    if _CONTROL(raw):
        raise BadTarget("a control character (%00-%1F, %7F) in the path")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Keep the bytes reachable as a file name (os functions accept surrogateescape).
        return raw.decode("utf-8", "surrogateescape")


def decode_path(raw_path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return ``(raw_segments, decoded_segments)`` for an origin path (leading ``/``).

    ``/a/b/`` gives ``("a", "b", "")``: the trailing empty segment records the trailing slash,
    which matters for directories. ``..`` (encoded or not) above the root raises
    :class:`BadTarget`.
    """
    if raw_path == "*":
        return (), ()
    if "%" not in raw_path and "/." not in raw_path and "//" not in raw_path:
        plain = tuple(raw_path[1:].split("/"))  # the common case: nothing to decode or resolve
        return plain, plain
    parts = raw_path[1:].split("/")
    raw_out: list[str] = []
    dec_out: list[str] = []
    last = len(parts) - 1
    for i, part in enumerate(parts):
        dec = _decode(part)
        if dec == "." or dec == "..":
            if dec == "..":
                if not dec_out:
                    raise BadTarget("path climbs above the root")
                raw_out.pop()
                dec_out.pop()
            if i == last:  # "/a/." and "/a/.." name a directory: keep the trailing slash
                raw_out.append("")
                dec_out.append("")
            continue
        if part == "" and i != last:
            continue  # collapse "//" as nginx does (merge_slashes)
        raw_out.append(part)
        dec_out.append(dec)
    if not dec_out:
        raw_out.append("")
        dec_out.append("")
    return tuple(raw_out), tuple(dec_out)
