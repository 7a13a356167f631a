"""Precompressed siblings: ``foo.css.br`` / ``.zst`` / ``.gz`` chosen by ``Accept-Encoding``.

Negotiation (RFC 9110 §12.5.3): each coding gets its ``q`` (explicit, else the ``*`` entry,
else 0 — not acceptable). The acceptable sibling with the highest ``q`` wins, ties going to the
order written in ``precompressed=``. Identity (the plain file) is only preferred when the client
ranks it explicitly above every available coding (``identity;q=1, gzip;q=0.5``); a tie goes to
the sibling (it is smaller). Names are compared
case-insensitively; ``x-gzip`` counts as ``gzip``.
"""

from __future__ import annotations

SUFFIXES: dict[str, str] = {"br": ".br", "zstd": ".zst", "gzip": ".gz"}
ALIASES = {"x-gzip": "gzip"}


def parse_accept_encoding(value: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in value.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        name = ALIASES.get(name, name)
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0 or q != q:
                    q = 0.0
        out[name] = max(q, out.get(name, 0.0)) if name in out else q
    return out


def choose(accept_encoding: str, available: list[str]) -> str | None:
    """The coding to serve among ``available`` (in preference order), ``None`` for identity."""
    accept = parse_accept_encoding(accept_encoding)
    star = accept.get("*")
    best, best_q = None, 0.0
    for coding in available:
        q = accept.get(coding, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    if best is None:
        return None
    # identity only competes when the client ranks it explicitly ("identity;q=1, gzip;q=0.5")
    identity = accept.get("identity", 0.0)
    return best if best_q >= identity else None
