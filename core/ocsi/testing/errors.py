"""Configuration errors in tests: the message and the line, counted in what the test wrote."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from .._config.errors import ConfigError

#: The line of a test server's document on which the ``xml`` given to ``ocsi_memory``,
#: ``ocsi_server`` or ``ocsi_process`` begins (after ``<ocsigen><server>``, the port, the log
#: directory and the command pipe that :func:`ocsi.testing.document` adds).
FIRST_LINE = 5

_LINE = re.compile(r":(\d+)(?::\d+)?$")


def assert_config_error(start: Callable[..., Any], xml: str, message: str,
                        line: int | None = None) -> ConfigError:
    """Start a server on ``xml`` with ``start`` (a fixture such as ``ocsi_memory``) and check
    that the configuration is refused with ``message`` (a part of it), located on ``line`` of
    ``xml`` itself (1 for its first line) when given, so no test counts the harness's lines."""
    with pytest.raises(ConfigError) as info:
        start(xml)
    error = info.value
    assert message in str(error), f"{message!r} not in {str(error)!r}"
    if line is not None:
        found = _LINE.search(error.where or "")
        assert found is not None, f"the error is not located: {error!s}"
        got = int(found.group(1)) - FIRST_LINE + 1
        assert got == line, f"located on line {got} of the test's XML, not {line}: {error!s}"
    return error
