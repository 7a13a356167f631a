"""``serve(xml)`` runs a test in memory and over real sockets (``ocsi_client``); ``memory(xml)``
in memory only. ``deflate_content`` (an extension module beside the tests) gives ``<payload>``."""

from __future__ import annotations

from ocsi.testing import preamble_fixtures

PREAMBLE = '<extension module="deflate_content"/>'

serve, memory = preamble_fixtures(PREAMBLE)
