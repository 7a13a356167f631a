"""Fixtures for the end-to-end tests: a server with the test extensions loaded."""

import pytest

BASE = '<findlib path="{exts}"/><extension findlib-package="ocsi-ext-testbase"/>'


@pytest.fixture
def serve(ocsi_server, exts_path):
    """``serve(xml)``: ``ocsi_server`` with ocsi-ext-testbase (say, answer, boom, echo…) loaded."""
    def start(xml, **kw):
        return ocsi_server(BASE.format(exts=exts_path) + xml, **kw)
    return start
