"""``serve(xml)`` runs a test in memory and over real sockets (``ocsi_client``); ``memory(xml)``
in memory only, where a test pretends to be another client address, TLS, or HTTP/1.0.
``ocsi.testing.content`` gives ``<page>``, ``<echo/>``, ``<fail>`` and ``<mark>``."""

from __future__ import annotations

from ocsi.testing import CONTENT, preamble_fixtures

PREAMBLE = '<extension findlib-package="ocsi-ext-accesscontrol"/>' + CONTENT

serve, memory = preamble_fixtures(PREAMBLE)
