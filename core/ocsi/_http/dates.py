"""HTTP dates (RFC 9110 §5.6.7): the cached ``Date`` value and parsing of the three formats.

Private: not part of the extension API.
"""

from __future__ import annotations

import time
from email.utils import parsedate_tz, mktime_tz

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_http_date(ts: float) -> str:
    """``Sun, 06 Nov 1994 08:49:37 GMT`` (IMF-fixdate) for a POSIX timestamp."""
    t = time.gmtime(ts)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def parse_http_date(value: str) -> int | None:
    """POSIX seconds for an IMF-fixdate, RFC 850 or asctime date; ``None`` when unparsable."""
    try:
        parts = parsedate_tz(value)
        if parts is None:
            return None
        return int(mktime_tz(parts))
    except (TypeError, ValueError, OverflowError):
        return None


_cached_second = -1
_cached_line = ""


def date_header_line() -> str:
    """``Date: <now>\\r\\n``, formatted at most once per second."""
    global _cached_second, _cached_line
    now = int(time.time())
    if now != _cached_second:
        _cached_line = f"Date: {format_http_date(now)}\r\n"
        _cached_second = now
    return _cached_line


def http_date_now() -> str:
    """The current ``Date`` value (cached per second)."""
    return date_header_line()[6:-2]
