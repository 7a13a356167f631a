"""Regular expressions written in the configuration, matched in time linear in the subject.

Every extension compiles its patterns (``<path regexp>``, ``<header regexp>``, ``<static
regexp>``, ``<redirect>``, ``<rewrite>``, ``<revproxy>``, ``<outputfilter>``, hide/forbid
rules, ``<userconf>``…) through :func:`compile_regex`, so one engine with one set of rules
matches all of them:

- **RE2** (``google-re2``), not the standard library's backtracking ``re``: whoever wrote the
  pattern (the administrator, or a user in a per-user file), a crafted request costs time
  proportional to its length times the pattern's size, never exponential (``([a-z0-9]+)*-x``
  on 26 characters took ``re`` 2.3 s; RE2 takes microseconds). ``bench/regex_engines.py``
  measures the engines. The price: RE2 has no back-references, look-around, possessive
  repetitions or atomic groups; such a pattern is a configuration error that says so.
  Repetition counts stop at 1000, and ``\\d``, ``\\w``, ``\\s``, ``\\b`` are ASCII.
- ``.`` matches any character, newline included (DOTALL): requests are matched decoded, and a
  guard such as ``admin.*`` must not stop at a ``%0a`` (Ocsigen matches still-encoded paths,
  where ``.`` never meets a newline, so this keeps its meaning).
- Each pattern gets at most :data:`MAX_MEMORY` bytes of automaton (RE2's own budget; past it
  RE2 falls back to a slower linear algorithm, or refuses a pattern whose program alone does
  not fit), so memory is bounded per pattern as time is per match.

Matching talks to RE2's compiled object directly (``re2._re2``): the package's ``re``-like
wrapper costs about ten times more per call, in Python code. Subjects are UTF-8 encoded with
``surrogatepass``, so the undecodable bytes of a path (kept as surrogates) are characters for
``.`` like any other, and groups are cut from the bytes, never from recomputed offsets.

Private: not part of the extension API.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import re2
from re2 import _re2

__all__ = ["MAX_MEMORY", "Regex", "RegexError", "RegexMatch", "compile_regex"]

#: RE2's memory budget for one pattern (program and automaton caches), in bytes.
MAX_MEMORY = 1 << 20

_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH
_START = _re2.RE2.Anchor.ANCHOR_START
_NONE = _re2.RE2.Anchor.UNANCHORED
_NO_SPAN = (-1, -1)
#: How long RE2's bounds on a match may be (a longer literal prefix only narrows less).
_RANGE_LENGTH = 64
#: ``\C`` (any byte) could cut a character in two; ocsi matches characters.
_ANY_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")


class RegexError(ValueError):
    """The pattern cannot be used; the message says why (and, for what RE2 lacks, that)."""


def _copy(options: re2.Options) -> re2.Options:
    out = re2.Options()
    for name in re2.Options.NAMES:
        setattr(out, name, getattr(options, name))
    return out


def _options(ignore_case: bool) -> re2.Options:
    opts = re2.Options()
    opts.dot_nl = True
    opts.case_sensitive = not ignore_case
    opts.log_errors = False  # errors are raised with the pattern, not printed on stderr
    opts.max_mem = MAX_MEMORY
    return opts


def _explain(text: str, message: str) -> str:
    """RE2's message, and what it means for a pattern Python's ``re`` would have taken."""
    if "repetition size" in message:
        return f"{message} (a repetition counts at most 1000)"
    if "pattern too large" in message:
        return f"{message} (more than {MAX_MEMORY // 1024} KiB of automaton: fewer or smaller counted repetitions)"
    try:
        re.compile(text)
    except re.error:
        return message
    return (f"{message} (ocsi matches regular expressions in linear time with RE2, which has no "
            f"back-references, look-around (?=…) (?!…) (?<=…) (?<!…), possessive or atomic "
            f"repetitions, and no \\Z: write \\z)")


class RegexMatch:
    """What a successful match gives: the groups (``group(n)``), as templates need them."""

    __slots__ = ("string", "_data", "_spans")

    def __init__(self, string: str, data: bytes, spans: list[tuple[int, int]]) -> None:
        self.string = string
        self._data = data
        self._spans = spans

    def group(self, n: int = 0) -> str | None:
        """Group ``n`` (0: the whole match); ``None`` for a group that did not take part."""
        start, end = self._spans[n]
        if start < 0:
            return None
        return self._data[start:end].decode("utf-8", "surrogatepass")

    def groups(self) -> tuple[str | None, ...]:
        return tuple(self.group(i) for i in range(1, len(self._spans)))

    def _offset(self, at: int) -> int:
        """A byte offset in the encoded subject as a character offset in ``string``."""
        if at < 0 or len(self._data) == len(self.string):  # -1, or ASCII: the same
            return at
        return len(self._data[:at].decode("utf-8", "surrogatepass"))

    def start(self, n: int = 0) -> int:
        """Where group ``n`` starts in ``string`` (-1 when it did not take part)."""
        return self._offset(self._spans[n][0])

    def end(self, n: int = 0) -> int:
        return self._offset(self._spans[n][1])

    def span(self, n: int = 0) -> tuple[int, int]:
        return self.start(n), self.end(n)

    def __repr__(self) -> str:
        return f"<RegexMatch {self.group()!r}>"


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class Regex:
    """A compiled configuration pattern: ``fullmatch``, ``match`` (at the start), ``search``
    and ``sub``, as with ``re``, with linear-time matching and ``.`` matching a newline."""

    __slots__ = ("pattern", "groups", "_re", "_test", "_options", "_low", "_high")

    def __init__(self, pattern: str, compiled: _re2.RE2, options: re2.Options) -> None:
        self.pattern = pattern
        self.groups: int = compiled.NumberOfCapturingGroups()
        self._re = compiled
        self._options = options
        #: The same pattern without groups, for yes/no questions (made on first use).
        self._test: _re2.RE2 | None = None if self.groups else compiled
        # RE2's bounds on what a match can be (as UTF-8): a subject outside them is a "no"
        # found by two comparisons, without calling RE2 (which costs about a microsecond).
        # ``admin.*`` gives "admin" to "admin\xf4…": most paths are refused that way.
        known, low, high = compiled.PossibleMatchRange(_RANGE_LENGTH)
        self._low: bytes = low if known else b""
        self._high: bytes | None = high if known else None

    @property
    def program_size(self) -> int:
        """RE2's program size: the factor of the subject's length in the cost of a match."""
        return int(self._re.ProgramSize())

    def _run(self, anchor: object, text: str) -> RegexMatch | None:
        data = _encode(text)
        spans = self._re.Match(anchor, data, 0, len(data))
        if spans[0] == _NO_SPAN:
            return None
        return RegexMatch(text, data, spans)

    def matches(self, text: str, whole: bool = True) -> bool:
        """Whether the pattern matches all of ``text`` (or its start, ``whole=False``).

        For conditions, which need no group: RE2 answers this with its DFA alone, while
        finding where groups are costs time proportional to the subject, the program and
        the number of groups (``(.*a){25}`` on 8 KiB: 27 ms with groups, 0.05 ms without).
        """
        data = text.encode("utf-8", "surrogatepass")
        if data < self._low:  # a match at the start is a prefix of data: data >= it >= low
            return False
        if whole:
            high = self._high
            if high is not None and data > high:
                return False
        test = self._test
        if test is None:
            opts = _copy(self._options)
            opts.never_capture = True
            test = self._test = _re2.RE2(_encode(self.pattern), opts)
        span: tuple[int, int] = test.Match(_BOTH if whole else _START, data, 0, len(data))[0]
        return span != _NO_SPAN

    def fullmatch(self, text: str) -> RegexMatch | None:
        return self._run(_BOTH, text)

    def match(self, text: str) -> RegexMatch | None:
        return self._run(_START, text)

    def search(self, text: str) -> RegexMatch | None:
        return self._run(_NONE, text)

    def sub(self, repl: Callable[[RegexMatch], str], text: str) -> str:
        """Every non-overlapping match replaced by ``repl(match)``, as ``re.sub`` with a
        function. After an empty match the search goes on one character further."""
        data = _encode(text)
        end = len(data)
        out: list[bytes] = []
        pos = done = 0
        while pos <= end:
            spans = self._re.Match(_NONE, data, pos, end)
            start, stop = spans[0]
            if start < 0:
                break
            out += [data[done:start], _encode(repl(RegexMatch(text, data, spans)))]
            done = stop
            if stop > start:
                pos = stop
                continue
            pos = stop + 1  # an empty match: step over one (UTF-8 encoded) character
            while pos < end and data[pos] & 0xC0 == 0x80:
                pos += 1
        out.append(data[done:])
        return b"".join(out).decode("utf-8", "surrogatepass")

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def compile_regex(text: str, *, ignore_case: bool = False) -> Regex:
    """Compile ``text``; :class:`RegexError` with RE2's reason (and what RE2 lacks, when that
    is the reason) when it cannot be used."""
    if _ANY_BYTE.search(text):
        raise RegexError(f"bad regular expression {text!r}: \\C (any byte) is not allowed")
    options = _options(ignore_case)
    compiled = _re2.RE2(_encode(text), options)
    if not compiled.ok():
        message = compiled.error()
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        raise RegexError(f"bad regular expression {text!r}: {_explain(text, message)}")
    return Regex(text, compiled, options)
