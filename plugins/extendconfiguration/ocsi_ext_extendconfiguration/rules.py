"""Compiling ``<hidefile>``/``<forbidfile>`` patterns and ``<charset>``/``<contenttype>`` rules.

Hide/forbid patterns are matched (``fullmatch``) against the whole normalised file path, as in
Ocsigen (spec §4.7): ``<extension ext="php"/>`` is ``.*\\.php``, ``<file file=".htaccess"/>`` is
``.*/\\.htaccess`` (both literal and case-sensitive), ``<regexp regexp="R"/>`` is ``R`` as written
and must match the whole path. staticmod checks them on the served path and on every directory
below the root on the way, so hiding ``.git`` hides what is inside it too.

Charset and content-type rules are looked up most recent first (:class:`ocsi.NameRule`):
an extension compares case-insensitively, a file name is the base name, a regexp must match at
the start of the full path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ocsi import NameRule, Regex, parse_regex


def extension_pattern(ext: str) -> Regex:
    return parse_regex(r".*\." + re.escape(ext))


def file_pattern(name: str) -> Regex:
    return parse_regex(r".*/" + re.escape(name))


def regexp_pattern(regexp: str) -> Regex:
    """Raises ``ValueError`` (``ValueFormatError``) saying why when ``regexp`` cannot be used."""
    return parse_regex(regexp)


def file_patterns(extensions: Iterable[str] = (), files: Iterable[str] = (),
                  regexps: Iterable[str] = ()) -> tuple[Regex, ...]:
    return (tuple(extension_pattern(e) for e in extensions)
            + tuple(file_pattern(f) for f in files)
            + tuple(regexp_pattern(r) for r in regexps))


def name_rule(kind: str, pattern: str, value: str) -> NameRule:
    if kind == "extension":
        return NameRule("extension", pattern.lower(), value)
    if kind == "file":
        return NameRule("file", pattern, value)
    if kind == "regexp":
        return NameRule("regexp", pattern, value, regexp_pattern(pattern))
    raise ValueError(f"unknown rule kind {kind!r}")


def newest_first(rules: Iterable[NameRule]) -> tuple[NameRule, ...]:
    """Rules in document order → lookup order (the last written is tried first)."""
    return tuple(reversed(list(rules)))
