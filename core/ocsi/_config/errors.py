"""Configuration errors: always located (file, line, column) and, when possible, with a hint.

Private: not part of the extension API.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem the user must fix; ``str()`` is the full located message."""

    #: Process exit code for this class of error (spec §1.5: 50 config, 51 XML, 53 package).
    exit_code = 50

    def __init__(self, message: str, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class XMLSyntaxError(ConfigError):
    """The file is not well-formed XML."""

    exit_code = 51


class ExtensionNotFound(ConfigError):
    """A named extension distribution (or one it depends on) is not installed."""

    exit_code = 53


class ExtensionLoadError(ConfigError):
    """An extension was found but importing or registering it failed."""

    exit_code = 52
