"""Which responses ``<deflate>`` is about: ``<type>`` and ``<extension>`` rules.

``compress="only"`` compresses when some rule matches, ``compress="allbut"`` when none does.
A type rule is ``major/minor`` where ``*`` stands for any run of characters (``text/*``,
``*/javascript``, ``application/*+json``), compared without the parameters (``; charset=…``) and,
unlike Ocsigen, without regard to case (media types are case-insensitive). An extension rule is a
plain suffix of the decoded sub-path (``.css``; ``gz`` also matches ``x.tgz``, as in Ocsigen).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ocsi import Wildcard

Mode = Literal["only", "allbut"]


def media_type(content_type: str) -> str:
    """``"Text/HTML; charset=utf-8"`` → ``"text/html"``."""
    return content_type.split(";", 1)[0].strip().lower()


def type_pattern(text: str) -> Wildcard:
    """A ``major/minor`` pattern (``*`` any run of characters, matched in linear time);
    raises ``ValueError`` when it has no ``/``."""
    t = text.strip().lower()
    major, slash, minor = t.partition("/")
    if not slash or not major or not minor or "/" in minor or any(c.isspace() for c in t):
        raise ValueError(f"{text!r} is not a media type pattern (MAJOR/MINOR, '*' allowed)")
    return Wildcard(t)


@dataclass(slots=True, frozen=True)
class Selection:
    """The rules of one ``<deflate>`` element."""

    mode: Mode
    types: tuple[Wildcard, ...] = ()
    extensions: tuple[str, ...] = ()

    @classmethod
    def build(cls, mode: str, types: Iterable[str] = (), extensions: Iterable[str] = ()) -> Selection:
        if mode not in ("only", "allbut"):
            raise ValueError(f"compress must be 'only' or 'allbut', not {mode!r}")
        exts = tuple(extensions)
        if any(not e for e in exts):
            raise ValueError("empty extension")
        return cls(mode, tuple(type_pattern(t) for t in types), exts)  # type: ignore[arg-type]  # mode checked above

    def type_matches(self, mtype: str) -> bool:
        return any(p.matches(mtype) for p in self.types)

    def path_matches(self, sub_path: str) -> bool:
        return any(sub_path.endswith(e) for e in self.extensions)
