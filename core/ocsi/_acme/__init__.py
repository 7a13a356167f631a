"""Automatic HTTPS: certificates obtained from an ACME CA (RFC 8555) and renewed by the server.

- :mod:`.config`: ``<acme>`` and ``<host acme="true">``, checked with located errors;
- :mod:`.store`: the account key, certificates, keys and their state under ``<datadir>/acme/``;
- :mod:`.challenges`: the answers to http-01 and tls-alpn-01, shared by every process;
- :mod:`.client`: one order, with the ``acme`` library (synchronous: run in a thread);
- :mod:`.serving`: which certificate a TLS handshake for an ACME name gets (or its refusal);
- :mod:`.manager`: when to order and renew, with backoff, in one process of the server.

The ``acme`` and ``josepy`` libraries are an optional extra (``pip install 'ocsi[acme]'``):
nothing here imports them until a certificate is ordered.

Private: not part of the extension API.
"""
