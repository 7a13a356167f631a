"""Value formats of configuration directives (spec §2.2), parsed once at load time.

Sizes accept Ocsigen's forms (``10k`` and ``10M`` binary, ``10kB``/``10ko`` SI, ``10kiB``,
``10MiB``… binary, ``infinity``) and, because users of other servers write them, ``10KB``,
``10KiB`` and ``10 MB`` too (Ocsigen rejects those). Durations are seconds, optionally with a
unit (``500ms``, ``30s``, ``5min``, ``2h``).

Private: not part of the extension API.
"""

from __future__ import annotations

import re

from .regex import Regex, RegexError, compile_regex

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


def parse_regex(text: str, *, ignore_case: bool = False) -> Regex:
    """A regular expression written in the configuration, compiled once at load time.

    Matched by RE2 in time linear in the subject, with ``.`` matching any character (see
    :mod:`ocsi._config.regex`). The error names what is wrong in the pattern (and what RE2
    lacks, when that is the reason), so it can be reported at the element.
    """
    try:
        return compile_regex(text, ignore_case=ignore_case)
    except RegexError as exc:
        raise ValueFormatError(str(exc)) from None


#: What a regular expression from a user's file may be (see :func:`check_bounded_regex`).
MAX_USER_REGEX = 256
#: RE2 instructions: with the groups, the factor of the request's length in the cost of a
#: match that fills groups (typical patterns: 10-60; at this size, 40 ms on 8 KiB at worst).
MAX_USER_PROGRAM = 300


def check_bounded_regex(text: str) -> None:
    """Refuse a pattern from a user's file whose matching could cost too much.

    Every configuration pattern is matched in linear time (RE2), so what is left to bound for
    users is the size of the pattern: at most ``MAX_USER_REGEX`` characters and an RE2
    program of at most ``MAX_USER_PROGRAM`` instructions (counted repetitions multiply it:
    ``[^/]{0,100}`` is refused, ``img/(.*)`` takes 17). Raises
    :class:`ValueFormatError` saying which limit the pattern passes.
    """
    if len(text) > MAX_USER_REGEX:
        raise ValueFormatError(f"regular expression longer than {MAX_USER_REGEX} characters")
    size = parse_regex(text).program_size
    if size > MAX_USER_PROGRAM:
        raise ValueFormatError(f"{text!r} is too large: {size} RE2 instructions, at most "
                               f"{MAX_USER_PROGRAM} in a user's file (counted repetitions multiply it)")
