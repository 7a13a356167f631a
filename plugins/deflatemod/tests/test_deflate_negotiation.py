"""Accept-Encoding negotiation as a table (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest
from ocsi_ext_deflatemod.negotiation import negotiate, parse_accept_encoding

ALL = ("zstd", "br", "gzip", "deflate")
STD = ("gzip", "deflate")
NOT_ACCEPTABLE = (None, False)
IDENTITY = (None, True)


@pytest.mark.parametrize("header, available, expected", [
    (None, ALL, IDENTITY),                                 # no header: nothing uninvited
    ("", ALL, IDENTITY),                                   # empty: identity only
    ("identity", ALL, IDENTITY),
    ("gzip", ALL, ("gzip", True)),
    ("GZIP", ALL, ("gzip", True)),                         # case-insensitive (Ocsigen: no)
    ("x-gzip", ALL, ("gzip", True)),
    ("deflate", ALL, ("deflate", True)),
    ("gzip, deflate", STD, ("gzip", True)),
    ("deflate, gzip", STD, ("gzip", True)),                # equal q: server preference
    ("gzip, deflate, br, zstd", ALL, ("zstd", True)),
    ("gzip, deflate, br", ALL, ("br", True)),
    ("gzip, deflate, br", STD, ("gzip", True)),            # br unavailable / not offered
    ("br;q=1.0, gzip;q=1.0", ALL, ("br", True)),
    ("zstd;q=0.9, br;q=0.9, gzip", ALL, ("gzip", True)),   # higher q beats preference
    ("gzip;q=0.5, deflate", STD, ("deflate", True)),
    ("gzip;q=0, deflate", STD, ("deflate", True)),         # checklist 102
    ("gzip; q=0.8 , deflate;q=0.9", STD, ("deflate", True)),
    ("gzip;Q=0", STD, IDENTITY),                           # parameter name case-insensitive
    ("gzip, gzip;q=0", STD, IDENTITY),                     # a refusal wins over a repeat
    ("gzip;q=0.001", STD, ("gzip", True)),                 # any listed coding beats implicit identity
    ("gzip, identity", STD, ("gzip", True)),               # tie: compress (Ocsigen: identity)
    ("gzip;q=0.5, identity", STD, IDENTITY),               # identity explicitly preferred
    ("identity;q=0", STD, NOT_ACCEPTABLE),                 # checklist 102: 406
    ("*;q=0", STD, NOT_ACCEPTABLE),
    ("*;q=0, identity", STD, IDENTITY),
    ("*;q=0, gzip", STD, ("gzip", False)),
    ("identity;q=0, gzip", STD, ("gzip", False)),
    ("compress", STD, IDENTITY),                           # unknown coding: identity is fine
    ("compress, identity;q=0", STD, NOT_ACCEPTABLE),
    ("*", STD, ("gzip", True)),                            # * means any coding (Ocsigen: none)
    ("*", ALL, ("zstd", True)),
    ("gzip, *", ALL, ("gzip", True)),                      # named beats "*" at equal q
    ("gzip;q=1, *;q=0.1", STD, ("gzip", True)),            # Ocsigen: no compression
    ("*;q=0.5, gzip;q=0.2", STD, ("deflate", True)),       # deflate via * at 0.5
    ("gzip;q=abc", STD, IDENTITY),                         # malformed q: item ignored
    ("gzip;q=2", STD, IDENTITY),
    ("gzip;q=nan", STD, IDENTITY),
    (" , gzip ,, ", STD, ("gzip", True)),
    ("gzip;q=0, deflate;q=0", STD, IDENTITY),
    ("gzip;q=0, deflate;q=0, identity;q=0", STD, NOT_ACCEPTABLE),
])
def test_negotiate(header: Any, available: Any, expected: Any) -> None:
    assert negotiate(header, available) == expected


def test_parse_accept_encoding() -> None:
    assert parse_accept_encoding("gzip;q=0.5, BR, x-gzip;q=0.7, *;q=0") == {
        "gzip": 0.7, "br": 1.0, "*": 0.0}
    assert parse_accept_encoding("gzip;level=1;q=0.3") == {"gzip": 0.3}
