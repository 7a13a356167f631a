"""Value formats of configuration directives (spec §2.2), parsed once at load time.

Sizes accept Ocsigen's forms (``10k`` and ``10M`` binary, ``10kB``/``10ko`` SI, ``10kiB``,
``10MiB``… binary, ``infinity``) and, because users of other servers write them, ``10KB``,
``10KiB`` and ``10 MB`` too (Ocsigen rejects those). Durations are seconds, optionally with a
unit (``500ms``, ``30s``, ``5min``, ``2h``).
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:_\d+)*)\s*([A-Za-z]*)\s*$")
_UNITS: dict[str, int] = {"": 1, "b": 1, "o": 1}
for _i, _p in enumerate("kmgt", start=1):
    _UNITS[_p] = 1024**_i  # Ocsigen: a bare letter is binary
    _UNITS[_p + "b"] = _UNITS[_p + "o"] = 1000**_i
    _UNITS[_p + "ib"] = _UNITS[_p + "io"] = 1024**_i


class ValueFormatError(ValueError):
    pass


def parse_int(text: str) -> int:
    """Ocsigen's ``int_of_string``: ``+/-``, ``0x``/``0o``/``0b``, ``_`` separators."""
    t = text.strip()
    try:
        return int(t, 0) if not re.fullmatch(r"[+-]?0\d+", t) else int(t, 10)
    except ValueError:
        raise ValueFormatError(f"{text!r} is not a valid integer") from None


def parse_size(text: str) -> int | None:
    """Bytes, or ``None`` for unlimited (``infinity`` or empty)."""
    t = text.strip()
    if t in ("", "infinity"):
        return None
    m = _SIZE.match(t)
    if m is None or m.group(2).lower() not in _UNITS:
        raise ValueFormatError(
            f"{text!r} is not a valid size (examples: 1048576, 10kB, 10KiB, 10M, 2GB, infinity)"
        )
    return int(m.group(1).replace("_", "")) * _UNITS[m.group(2).lower()]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|min|m|h)?\s*$")
_DUR_UNITS = {None: 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str, allow_none: bool = False) -> float | None:
    """Seconds as a float; ``notimeout``/``infinity`` give ``None`` when ``allow_none``."""
    t = text.strip()
    if allow_none and t in ("notimeout", "infinity", "none"):
        return None
    m = _DURATION.match(t)
    if m is None:
        raise ValueFormatError(f"{text!r} is not a valid duration (examples: 30, 2.5, 500ms, 5min)")
    return float(m.group(1)) * _DUR_UNITS[m.group(2)]


def parse_seconds(text: str) -> float:
    """A duration that must be finite (``30``, ``500ms``, ``5min``), in seconds."""
    value = parse_duration(text)
    assert value is not None
    return value


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "yes", "on", "1"):
        return True
    if t in ("false", "no", "off", "0"):
        return False
    raise ValueFormatError(f"{text!r} is not a boolean (true or false)")


def parse_regex(text: str, flags: int = 0) -> re.Pattern[str]:
    """A regular expression written in the configuration, compiled once at load time.

    The error names what is wrong in the pattern, so it can be reported at the element.
    Patterns are written by the administrator here; those that users supply (per-user
    configuration files) go through a bounded matcher instead.
    """
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise ValueFormatError(f"bad regular expression {text!r}: {exc}") from None


#: What a regular expression from a user's file may be (see :func:`check_bounded_regex`).
MAX_USER_REGEX = 256
MAX_UNBOUNDED_REPEATS = 2


def check_bounded_regex(text: str) -> None:
    """Refuse a pattern whose matching time could explode on a crafted URL.

    For patterns users write (userconf files), not the administrator: Python's matcher
    backtracks, and nested repetition (``(a+)+``), a repeated alternation (``(a|a)*``) or a
    back-reference can take exponential time. Allowed: at most ``MAX_USER_REGEX`` characters,
    repetitions that do not nest and hold no alternation, at most ``MAX_UNBOUNDED_REPEATS``
    unbounded ones, no back-references. The pattern is read with the standard library's own
    regular-expression parser. Raises :class:`ValueFormatError` saying which rule it breaks.
    """
    import importlib

    # the standard library's own parser for ``re`` (the same in every CPython since 3.11)
    c = importlib.import_module("re._constants")
    p = importlib.import_module("re._parser")

    if len(text) > MAX_USER_REGEX:
        raise ValueFormatError(f"regular expression longer than {MAX_USER_REGEX} characters")
    try:
        tree = p.parse(text)
    except re.error as exc:
        raise ValueFormatError(f"bad regular expression {text!r}: {exc}") from None
    unbounded = 0
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT)

    def walk(items: object, inside_repeat: bool) -> None:
        nonlocal unbounded
        for op, av in items:  # type: ignore[attr-defined]
            if op in repeats:
                low, high, sub = av
                if high == c.MAXREPEAT:
                    unbounded += 1
                if inside_repeat and high > 1:
                    raise ValueFormatError(f"{text!r}: a repetition inside a repetition")
                walk(sub, inside_repeat or high > 1)
            elif op is c.BRANCH:
                if inside_repeat:
                    raise ValueFormatError(f"{text!r}: an alternation inside a repetition")
                for branch in av[1]:
                    walk(branch, inside_repeat)
            elif op is c.SUBPATTERN:
                walk(av[-1], inside_repeat)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                walk(av[1], inside_repeat)
            elif op is c.GROUPREF or op is c.GROUPREF_EXISTS:
                raise ValueFormatError(f"{text!r}: a back-reference")

    walk(tree, False)
    if unbounded > MAX_UNBOUNDED_REPEATS:
        raise ValueFormatError(f"{text!r}: more than {MAX_UNBOUNDED_REPEATS} unbounded repetitions")
