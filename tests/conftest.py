"""Shared helpers for the core's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

EXTS = str(Path(__file__).parent / "exts")


@pytest.fixture
def exts_path() -> str:
    """Directory holding the test extension distributions (used with <findlib path>)."""
    return EXTS


def doc(inner: str) -> bytes:
    return f"<ocsigen><server>{inner}</server></ocsigen>".encode()


@pytest.fixture
def write_conf(tmp_path):
    def write(text: str, name: str = "ocsi.conf") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


os.environ.setdefault("OCSI_TEST", "1")
