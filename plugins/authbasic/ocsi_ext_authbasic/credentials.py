"""The ``Authorization: Basic`` header (RFC 7617), read strictly, and the 401 that asks for it."""

from __future__ import annotations

import base64
import binascii

__all__ = ["challenge", "parse_basic"]


def parse_basic(value: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from a Basic credential, or ``None`` when there is none, another
    scheme, bad base64 or no colon. The scheme is case-insensitive; the credential is UTF-8
    (what ``charset="UTF-8"`` announces), latin-1 when it is not valid UTF-8."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    user, colon, password = text.partition(":")
    if not colon:
        return None
    return user, password


def challenge(realm: str) -> str:
    """``Basic realm="…", charset="UTF-8"`` with the realm as a quoted-string."""
    escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{escaped}", charset="UTF-8"'
