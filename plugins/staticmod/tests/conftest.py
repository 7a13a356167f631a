"""``runtime(inner)``: staticmod and extendconfiguration serving ``inner`` (``<server>``
children) through the in-memory server of the test kit, ``Host: example.org`` by default.
``module_runtime`` is the same for module-scoped fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ocsi.testing import MemoryServer

EXTENSIONS = ("staticmod", "extendconfiguration")


def _document(inner: str, extensions: tuple[str, ...]) -> str:
    return "".join(f'<extension findlib-package="ocsi-ext-{e}"/>' for e in extensions) + inner


@pytest.fixture
def runtime(ocsi_memory: Callable[..., MemoryServer]) -> Callable[..., MemoryServer]:
    def start(inner: str, extensions: tuple[str, ...] = EXTENSIONS, **options: Any) -> MemoryServer:
        return ocsi_memory(_document(inner, extensions), default_host="example.org", **options)

    return start


@pytest.fixture(scope="module")
def module_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MemoryServer]]:
    started: list[MemoryServer] = []

    def start(inner: str, extensions: tuple[str, ...] = EXTENSIONS) -> MemoryServer:
        srv = MemoryServer(_document(inner, extensions), tmp_path_factory.mktemp("mem"),
                           default_host="example.org")
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
