"""Precompressed siblings: ``foo.css.br`` / ``.zst`` / ``.gz`` chosen by ``Accept-Encoding``.

Negotiation is the core's (`ocsi.httputil.negotiate`, RFC 9110 §12.5.3), the same as
deflatemod's: the acceptable sibling with the highest ``q`` wins, ties going to the order written
in ``precompressed=``; identity (the plain file) wins only when the client ranks it above every
available coding (``identity;q=1, gzip;q=0.5``).
"""

from __future__ import annotations

from ocsi.httputil import negotiate

SUFFIXES: dict[str, str] = {"br": ".br", "zstd": ".zst", "gzip": ".gz"}


def choose(accept_encoding: str, available: list[str]) -> str | None:
    """The coding to serve among ``available`` (in preference order), ``None`` for identity."""
    coding, _ = negotiate(accept_encoding, tuple(available))
    return coding
