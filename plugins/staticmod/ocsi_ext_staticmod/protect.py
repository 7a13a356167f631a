"""Names a document root holds but a file server must not hand out (``protect=``).

A directory published as is often holds files meant for the server or the developer, not the
public: Apache's access files (``.htaccess``, ``.htpasswd``: rules and password hashes), a Git
repository (``.git/``: the whole history, with whatever secret was ever committed) and the
environment files of many frameworks (``.env``, ``.env.local``: keys and passwords). Apache
refuses ``.ht*`` out of the box; ocsi refuses all of them, on every path component below the
root (so ``.git/config`` too), case-insensitively (a case-insensitive file system would serve
``.HTACCESS``), and leaves them out of listings. ``.well-known`` and other dotfiles are served.

The answer is "not concerned" (a 404 unless a later step serves the URL), as ``<hidefile>``:
a 403 would tell a scanner probing ``/.git/HEAD`` that the repository is there.
"""

from __future__ import annotations

import fnmatch
import re

#: The default of ``protect=``: access files, Git repositories, environment files.
DEFAULT_PROTECT = ".ht* .git .env .env.*"


class Protected:
    """Shell patterns (``*``, ``?``, ``[…]``) matched against each name of a path."""

    __slots__ = ("text", "_rx", "_dotted")

    def __init__(self, text: str) -> None:
        names = text.replace(",", " ").split()
        self.text = " ".join(names)
        self._rx = (re.compile("|".join(fnmatch.translate(n) for n in names), re.IGNORECASE)
                    if names else None)
        #: Every pattern starts with a dot: a path without ``/.`` cannot match (fast path).
        self._dotted = all(n.startswith(".") for n in names)

    def __bool__(self) -> bool:
        return self._rx is not None

    def __repr__(self) -> str:
        return f"Protected({self.text!r})"

    def name(self, name: str) -> bool:
        """Whether one file name is protected."""
        return self._rx is not None and self._rx.match(name) is not None

    def path(self, path: str, start: int = 0) -> bool:
        """Whether any name of ``path[start:]`` (the part below the root, which begins with
        ``/`` or is empty) is protected. Most paths have no ``/.``: one search, no copy."""
        rx = self._rx
        if rx is None or (self._dotted and path.find("/.", start) < 0):
            return False
        return any(rx.match(part) is not None for part in path[start:].split("/"))


DEFAULT = Protected(DEFAULT_PROTECT)
