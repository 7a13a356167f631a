"""How a login and password are checked: ``<plain>``, ``<htpasswd>``, and those other
extensions register (:func:`register_method`, as Ocsigen's
``register_basic_authentication_method``).

A method is an object with ``check(user, password) -> bool``; it may block (hashing is slow
on purpose), so the step calls it in a thread. Comparisons are constant-time, and an unknown
user costs as much as a known one (a hash is checked against a dummy), so timing does not tell
which logins exist.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from ocsi import Element, ParseContext
from passlib.hash import apr_md5_crypt, sha256_crypt, sha512_crypt

__all__ = ["Htpasswd", "Method", "Plain", "register_method", "verify_hash"]

log = logging.getLogger("ocsi.ext.authbasic")


class Method(Protocol):
    def check(self, user: str, password: str) -> bool: ...


#: ``{tag: parser(element, ctx) -> Method}`` for the child of ``<authbasic>``.
METHODS: dict[str, Callable[[Element, ParseContext], Method]] = {}


def register_method(tag: str, parser: Callable[[Element, ParseContext], Method]) -> None:
    """Let ``<authbasic>`` take ``<tag …/>`` as its method (another extension's, say LDAP)."""
    METHODS[tag] = parser


class Plain:
    """``<plain login="L" password="P"/>``: one login, its password written in the file."""

    def __init__(self, login: str, password: str) -> None:
        self.login = login.encode()
        self.password = password.encode()

    def check(self, user: str, password: str) -> bool:
        ok_user = hmac.compare_digest(user.encode(), self.login)
        ok_password = hmac.compare_digest(password.encode(), self.password)
        return ok_user and ok_password


_ARGON2 = PasswordHasher()
_DUMMY = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=10)).decode()


def verify_hash(stored: str, password: str) -> bool:
    """``password`` against an htpasswd hash: bcrypt (``$2a$``/``$2b$``/``$2y$``), argon2
    (``$argon2…``), SHA-crypt (``$5$``, ``$6$``) or Apache's MD5 (``$apr1$``). Anything
    else never matches (clear-text entries are refused when the file is read)."""
    secret = password.encode()
    try:
        if stored.startswith(("$2a$", "$2b$", "$2y$")):
            # bcrypt knows $2b$; $2y$ (PHP, Apache) and $2a$ are the same algorithm
            return bcrypt.checkpw(secret, ("$2b$" + stored[4:]).encode())
        if stored.startswith("$argon2"):
            try:
                return _ARGON2.verify(stored, secret)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        if stored.startswith("$5$"):
            return bool(sha256_crypt.verify(secret, stored))
        if stored.startswith("$6$"):
            return bool(sha512_crypt.verify(secret, stored))
        if stored.startswith("$apr1$"):
            return bool(apr_md5_crypt.verify(secret, stored))
    except ValueError:  # a damaged hash
        return False
    return False


KNOWN_PREFIXES = ("$2a$", "$2b$", "$2y$", "$argon2", "$5$", "$6$", "$apr1$")


class Htpasswd:
    """``<htpasswd file="F"/>``: ``user:hash`` lines, read again when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._users: dict[str, str] = {}
        self._stamp: tuple[int, int, int, int] | None = None
        self._lock = threading.Lock()
        self.load()

    def _current_stamp(self) -> tuple[int, int, int, int]:
        st = os.stat(self.path)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> None:
        """Read the file (OSError when it cannot be read)."""
        stamp = self._current_stamp()
        users: dict[str, str] = {}
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, colon, stored = line.partition(":")
                if not colon or not stored.startswith(KNOWN_PREFIXES):
                    log.warning("%s:%d: not a user:hash line with a known hash (bcrypt, argon2, "
                                "SHA-crypt, apr1); ignored", self.path, number)
                    continue
                users[user] = stored
        self._users, self._stamp = users, stamp

    def _fresh(self) -> dict[str, str]:
        try:
            stamp = self._current_stamp()
        except OSError as exc:
            log.error("cannot read %s (%s); keeping the users read before", self.path, exc.strerror)
            return self._users
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self.load()
                        log.info("%s read again: %d users", self.path, len(self._users))
                    except OSError as exc:
                        log.error("cannot read %s (%s); keeping the users read before",
                                  self.path, exc.strerror)
        return self._users

    def check(self, user: str, password: str) -> bool:
        stored = self._fresh().get(user)
        if stored is None:
            verify_hash(_DUMMY, password)  # as long as a real check: logins cannot be probed
            return False
        return verify_hash(stored, password)


def _parse_plain(el: Element, ctx: ParseContext) -> Method:
    el.check(attributes=["login", "password"])
    return Plain(el.require("login"), el.require("password"))


def _parse_htpasswd(el: Element, ctx: ParseContext) -> Method:
    el.check(attributes=["file"])
    path = el.require("file", hint='e.g. <htpasswd file="/etc/ocsi/users.htpasswd"/>')
    try:
        return Htpasswd(path)
    except OSError as exc:
        raise el.error(f"cannot read {path}: {exc.strerror}") from None


register_method("plain", _parse_plain)
register_method("htpasswd", _parse_htpasswd)
