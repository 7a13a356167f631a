"""``<host redirect-to-https="true" hsts="…">``: the two HTTPS habits of nginx and Caddy sites.

- ``redirect-to-https``: a request that came over plain HTTP is answered with a redirect to
  the same URL over HTTPS (301 for GET and HEAD, 308 otherwise so the method and body are
  kept). The port is the host's ``defaulthttpsport`` (the first HTTPS ``<port>``), left out
  when it is 443.
- ``hsts``: answers over HTTPS carry ``Strict-Transport-Security``. The value is a number of
  seconds (``max-age``) or the whole header value.

Private: not part of the extension API.
"""

from __future__ import annotations

from .._http.hostport import join_host_port, split_host_port
from .._http.request import Request
from .._http.response import Response
from .answers import DO_NOTHING, Answer, Found, ServeNow, State
from .step import Step


#: In ``Request.stash``: this host cannot be served over HTTPS yet (its automatic certificate
#: is not obtained, :mod:`ocsi.acme`), so ``redirect-to-https`` waits.
HTTPS_PENDING = "ocsi.https-pending"


class RedirectToHTTPS(Step):
    async def handle(self, request: Request, state: State) -> Answer:
        if request.secure or request.stash.get(HTTPS_PENDING):
            return DO_NOTHING
        config = request.config
        name = config.default_hostname
        if request.host_header and not config.use_default_hostname:
            name = split_host_port(request.host_header)[0] or name
        port = config.default_httpsport
        authority = name if port == 443 else join_host_port(name, port)
        status = 301 if request.method in ("GET", "HEAD") else 308
        answer = Response(status, [("location", f"https://{authority}{request.target}"),
                                   ("content-length", "0")], b"")
        return ServeNow(answer)


class StrictTransportSecurity(Step):
    def __init__(self, value: str) -> None:
        self.value = value

    async def handle(self, request: Request, state: State) -> Answer:
        if request.secure and isinstance(state, Found):
            headers = state.response.headers
            if "strict-transport-security" not in headers:
                headers.add("strict-transport-security", self.value)
        return DO_NOTHING


def hsts_value(text: str) -> str:
    """``31536000`` -> ``max-age=31536000``; a value starting with ``max-age=`` is kept."""
    t = text.strip()
    if t.isdigit():
        return f"max-age={t}"
    if t.lower().startswith("max-age="):
        return t
    raise ValueError(f"{text!r} is neither a number of seconds nor a max-age=… value")
