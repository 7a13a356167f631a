"""HTTP objects (request, response, bodies, headers) and the HTTP/1.1 connection layer.

Private: not part of the extension API.
"""

from .body import Body, BytesBody, FileBody, StreamBody
from .errors import BodyAborted, HTTPError
from .headers import Headers
from .request import Request, RequestBody
from .response import Response, error_response
from .tunnel import Tunnel, TunnelBody

__all__ = ["BodyAborted", "Body", "BytesBody", "FileBody", "StreamBody", "HTTPError", "Headers", "Request",
           "RequestBody", "Response", "Tunnel", "TunnelBody", "error_response"]
