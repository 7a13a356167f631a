"""The client side of HTTP/1.1, for an extension that talks to a backend (a proxy).

- :class:`ResponseReader`: h11's response parser without its state machine, the same
  arrangement as the server's own request reader (heads and bodies framed as h11 frames
  them, limits on the head).
- :class:`ResponseHead`: what :meth:`ResponseReader.read_head` gives for the usual response
  head (a canonical final one): its fields as text and its framing fields read, in one pass.
- :func:`header_fields`: a head's fields as ``(lower-case name, value)`` strings.
- :func:`response_framing`: how a response's body is delimited (length, chunked, to the close).
- :func:`request_head_problem`: why a request head breaks the rules the server holds every
  request to, or ``None``: a client checks what it is about to write with it, so a proxy never
  sends what it would itself refuse.
"""

from __future__ import annotations

from ._http.fieldcheck import request_head_problem
from ._http.reader import ResponseReader, header_fields, response_framing
from ._http.responsehead import ResponseHead

__all__ = ["ResponseHead", "ResponseReader", "header_fields", "response_framing",
           "request_head_problem"]
