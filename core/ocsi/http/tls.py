"""TLS for listeners: an ``SSLContext`` suited to the HTTP/1.1 connection layer.

The connection layer runs unchanged over an SSL transport (``loop.create_server(..., ssl=ctx)``
with ``protocol_factory(port, secure=True)``); files then go out through ``pread`` + writes, as
``sendfile`` cannot see the encryption.
"""

from __future__ import annotations

import ssl


def server_context(certfile: str, keyfile: str | None = None, *, ciphers: str | None = None,
                   password: str | None = None,
                   minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    """A server context for ``certfile`` (PEM chain) and ``keyfile`` (defaults to the same file).

    ALPN advertises only ``http/1.1`` so that clients able to speak HTTP/2 do not try it.
    ``ciphers`` is an OpenSSL cipher string (Ocsigen's ``<ciphers>``) for TLS ≤ 1.2.
    Raises ``OSError``/``ssl.SSLError`` for unreadable or mismatched files.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum_version
    ctx.load_cert_chain(certfile, keyfile, password)
    if ciphers:
        ctx.set_ciphers(ciphers)
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx
