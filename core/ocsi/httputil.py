"""HTTP helpers an extension may need beside the objects :mod:`ocsi` exports.

- Dates: :func:`format_http_date` (IMF-fixdate for a POSIX time), :func:`parse_http_date`.
- Fields: :func:`has_token` (a token in a comma-list field such as ``Vary``).
- Content codings: :func:`negotiate` (the coding to answer with), :func:`parse_accept_encoding`.
- Authorities: :func:`split_host_port`, :func:`join_host_port` (IPv6 literals bracketed).
- URLs of a request: :func:`slash_redirect` (301 to the same URL with a trailing ``/``, as
  Ocsigen does for directories), :func:`absolute_url` (``scheme://authority/path``).
"""

from __future__ import annotations

from ._http.dates import format_http_date, parse_http_date
from ._http.headers import has_token
from ._http.hostport import join_host_port, split_host_port
from ._http.negotiation import negotiate, parse_accept_encoding
from ._pipeline.urls import absolute_url, slash_redirect

__all__ = ["format_http_date", "parse_http_date", "has_token", "negotiate", "parse_accept_encoding",
           "split_host_port", "join_host_port", "slash_redirect", "absolute_url"]
