"""Choosing a content coding from ``Accept-Encoding`` (RFC 9110 §12.5.3).

Shared by every extension that picks a coding (deflatemod compressing on the fly, staticmod
choosing a precompressed sibling), so they agree on what a header means. Where Ocsigen is
surprising, this follows the RFC (spec §4.3, checklist 102/103):

* coding names are case-insensitive (``GZIP`` works); ``x-gzip`` is ``gzip``;
* ``*`` stands for every coding not listed explicitly, identity included (Ocsigen treats any
  ``*`` with q>0 as "no compression");
* the highest q wins; at equal q a coding the client named beats one it only accepts through
  ``*`` (``gzip, *`` gives gzip), then the server's preference order decides (the order of
  ``available``), and any
  coding beats identity (``gzip, identity`` compresses);
* identity is acceptable unless ``identity;q=0``, or ``*;q=0`` without an ``identity`` entry;
  when it is not listed it ranks below every listed coding;
* no acceptable coding and identity refused: the caller answers 406. An empty header means
  "identity only"; no header at all means identity (nothing is compressed uninvited).
* an item with a malformed q is ignored; a coding listed twice keeps q=0 if either says so.

Private: not part of the extension API.
"""

from __future__ import annotations

import functools
import math

#: q given to identity when the client does not mention it (and no ``*``): acceptable, but below
#: any coding the client listed (the smallest q a client can write is 0.001).
_IMPLICIT_IDENTITY = 0.0005


def parse_accept_encoding(value: str) -> dict[str, float]:
    """``"gzip;q=0.5, br"`` → ``{"gzip": 0.5, "br": 1.0}`` (names lower-cased)."""
    prefs: dict[str, float] = {}
    for item in value.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q: float | None = 1.0
        for param in params.split(";"):
            key, eq, raw = param.partition("=")
            if key.strip().lower() == "q" and eq:
                try:
                    q = float(raw.strip())
                except ValueError:
                    q = None
                if q is not None and (math.isnan(q) or not 0.0 <= q <= 1.0):
                    q = None
        if q is None:
            continue
        if name == "x-gzip":
            name = "gzip"
        prev = prefs.get(name)
        if prev is None:
            prefs[name] = q
        elif prev == 0.0 or q == 0.0:
            prefs[name] = 0.0
        else:
            prefs[name] = max(prev, q)
    return prefs


@functools.lru_cache(maxsize=512)
def negotiate(header: str | None, available: tuple[str, ...]) -> tuple[str | None, bool]:
    """``(coding, identity_ok)`` for the joined ``Accept-Encoding`` lines (``None``: absent).

    ``coding`` is the coding to use among ``available`` (server preference order), or ``None``
    to send the response as it is; ``identity_ok`` says whether sending it uncompressed is
    acceptable to the client. ``(None, False)`` means 406 Not Acceptable.
    """
    if header is None:
        return None, True
    prefs = parse_accept_encoding(header)
    star = prefs.get("*")
    best: str | None = None
    best_rank = (0.0, False)
    for coding in available:
        q = prefs.get(coding)
        rank = (q, True) if q is not None else (star or 0.0, False)
        if rank[0] > 0.0 and rank > best_rank:
            best, best_rank = coding, rank
    identity_q = prefs.get("identity", star if star is not None else _IMPLICIT_IDENTITY)
    if best is not None and best_rank[0] >= identity_q:
        return best, identity_q > 0.0
    return None, identity_q > 0.0
