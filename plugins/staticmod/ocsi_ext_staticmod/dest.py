"""``dest=`` and ``root=`` templates of ``<static regexp=…>``: ``\\0``–``\\9`` and ``$u(user)``.

Ocsigen's rules (spec §4.1): ``\\N`` (one digit) is replaced by group N of the anchored match,
``\\x`` for any other character gives ``x``, ``$`` is literal, and ``$u(name)`` (after the group
substitution) is replaced by the home directory of user ``name``; an unknown user means "not
concerned". Where Ocsigen fails at request time (a trailing ``\\``, a reference to a group the
regexp does not have) ocsi refuses the configuration; a group that did not participate in the
match gives the empty string instead of a 500.
"""

from __future__ import annotations

import pwd
import re
from dataclasses import dataclass

from ocsi import RegexMatch

_USER = re.compile(r"\$u\(([^)]*)\)")


@dataclass(slots=True, frozen=True)
class Template:
    """A parsed template: literal strings and group numbers, in order."""

    text: str
    parts: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str, groups: int) -> Template:
        """Parse ``text`` for a regexp with ``groups`` groups; raises ``ValueError``."""
        parts: list[str | int] = []
        buf: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c != "\\":
                buf.append(c)
                i += 1
                continue
            if i + 1 >= n:
                raise ValueError(f"{text!r} ends with a lone backslash")
            nxt = text[i + 1]
            if nxt.isdigit() and nxt.isascii():
                g = int(nxt)
                if g > groups:
                    raise ValueError(f"{text!r} refers to group \\{g} but the regexp has "
                                     f"{groups} group{'s' if groups != 1 else ''}")
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(g)
            else:
                buf.append(nxt)
            i += 2
        if buf:
            parts.append("".join(buf))
        return cls(text, tuple(parts))

    def expand(self, match: RegexMatch | None) -> str | None:
        """The substituted text, ``None`` when a ``$u(user)`` names no known user."""
        out = []
        for p in self.parts:
            if isinstance(p, int):
                out.append((match.group(p) if match is not None else "") or "")
            else:
                out.append(p)
        text = "".join(out)
        if "$u(" in text:
            return expand_users(text)
        return text


def home_of(name: str) -> str | None:
    """Home directory of user ``name``, ``None`` when unknown (or not a plausible name)."""
    if not name or "/" in name or "\x00" in name or name.startswith("."):
        return None
    try:
        return pwd.getpwnam(name).pw_dir
    except (KeyError, UnicodeEncodeError, ValueError):
        return None


def expand_users(text: str) -> str | None:
    """Replace every ``$u(name)`` by the home of ``name``; ``None`` if one is unknown."""
    unknown = False

    def repl(m: re.Match[str]) -> str:
        nonlocal unknown
        home = home_of(m.group(1))
        if home is None:
            unknown = True
            return ""
        return home.rstrip("/")

    out = _USER.sub(repl, text)
    return None if unknown else out
