"""Templates with regular-expression groups: ``\\1``…``\\9`` (and ``$1`` in the oldest syntax).

Ocsigen's redirect, rewrite, revproxy and outputfilter all build a string from a match the
same way; this is that one way. Everything but a group reference is literal (a lone
backslash stays a backslash), and a reference to a group the expression does not have is an
error when the configuration loads.

Private: not part of the extension API.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .regex import RegexMatch

__all__ = ["GroupTemplate"]

#: What :meth:`GroupTemplate.expand_url` percent-encodes in the text of a group.
_URL_UNSAFE = {c: f"%{c:02X}" for c in (*range(0x21), 0x5C, 0x7F)}

_GROUP = re.compile(r"\\(\d)")
_GROUP_OR_DOLLAR = re.compile(r"\\(\d)|\$(\d)")


class GroupTemplate:
    __slots__ = ("text", "_parts", "groups_used")

    def __init__(self, text: str, groups: int, dollar: bool = False) -> None:
        """``groups``: how many the expression has; ``dollar``: ``$N`` counts too."""
        self.text = text
        parts: list[str | int] = []
        used = 0
        pos = 0
        for m in (_GROUP_OR_DOLLAR if dollar else _GROUP).finditer(text):
            n = int(m.group(1) or m.group(2))
            if n > groups:
                raise ValueError(f"{text!r} refers to group {n}, but the regular expression "
                                 f"has {groups}")
            parts += [text[pos:m.start()], n]
            used = max(used, n)
            pos = m.end()
        parts.append(text[pos:])
        self._parts = tuple(p for p in parts if p != "")
        self.groups_used = used

    @property
    def static(self) -> bool:
        """No group in it: every expansion is the text itself."""
        return not any(isinstance(p, int) for p in self._parts)

    @property
    def literal_prefix(self) -> str:
        """The text before the first group (all of it when there is none)."""
        out = []
        for p in self._parts:
            if isinstance(p, int):
                break
            out.append(p)
        return "".join(out)

    def expand(self, match: RegexMatch) -> str:
        return "".join(p if isinstance(p, str) else (match.group(p) or "") for p in self._parts)

    __call__ = expand  # usable as Regex.sub's replacement

    def expand_url(self, match: RegexMatch, at_start: bool = True) -> str:
        """:meth:`expand` for a URL sent back to a browser (a ``Location``): what the groups
        copy from the request cannot make it name another host. A ``\\``, a space or a control
        character from a group is percent-encoded (browsers read ``/\\evil.example`` as
        ``//evil.example``, and drop tabs and line breaks from URLs), and a
        result that starts with ``//`` only because of a group gets its second ``/`` encoded
        (``/%2Fevil.example``: a path, not a network-path reference). What the template itself
        writes is kept (``//cdn.example/\\1`` is the administrator's choice). ``at_start``:
        the result begins the URL (``False`` for a replacement inside a longer value)."""
        out = "".join(p if isinstance(p, str) else (match.group(p) or "").translate(_URL_UNSAFE)
                      for p in self._parts)
        if at_start and out.startswith("//") and not self.text.startswith("//"):
            out = "/%2F" + out[2:]
        return out

    def __repr__(self) -> str:
        return f"GroupTemplate({self.text!r})"
