"""Accept-Encoding negotiation: the core's (`ocsi.httputil.negotiate`), shared with staticmod."""

from ocsi.httputil import negotiate, parse_accept_encoding

__all__ = ["negotiate", "parse_accept_encoding"]
