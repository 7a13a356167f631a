"""The ``<authbasic>`` step: a request without valid credentials gets 401 and goes no further.

Checking a password is slow on purpose (bcrypt, argon2), so it runs in a worker thread,
at most ``CHECKS_AT_ONCE`` at a time, and a success is remembered for ``REMEMBER`` seconds
(browsers send the credentials with every request). A client that keeps failing is slowed
down: past ``FREE_FAILURES`` failures its 401s wait longer and longer, up to ``MAX_DELAY``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from ocsi import DO_NOTHING, Found, Headers, HTTPError, Step

from .credentials import challenge, parse_basic
from .methods import Method

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

log = logging.getLogger("ocsi.ext.authbasic")

CHECKS_AT_ONCE = 4
REMEMBER = 60.0
REMEMBERED = 4096
FREE_FAILURES = 5
FAILURE_WINDOW = 300.0
MAX_DELAY = 5.0
CLIENTS = 10000


class Limiter:
    """Failures per client address, bounded in size; the delay a failing client has earned."""

    def __init__(self) -> None:
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failed(self, client: str) -> float:
        """Record a failure; the seconds to wait before answering it."""
        now = time.monotonic()
        count, since = self._failures.pop(client, (0, now))
        if now - since > FAILURE_WINDOW:
            count, since = 0, now
        count += 1
        self._failures[client] = (count, since)
        while len(self._failures) > CLIENTS:
            self._failures.popitem(last=False)
        if count <= FREE_FAILURES:
            return 0.0
        return float(min(MAX_DELAY, 0.25 * 2 ** (count - FREE_FAILURES - 1)))

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class AuthBasic(Step):
    def __init__(self, realm: str, method: Method, limiter: Limiter | None = None) -> None:
        self.realm = realm
        self.method = method
        self.limiter = limiter if limiter is not None else Limiter()
        self._challenge = Headers([("www-authenticate", challenge(realm))])
        self._remembered: OrderedDict[bytes, float] = OrderedDict()
        self._checks: asyncio.Semaphore | None = None

    async def handle(self, request: Request, state: State) -> Answer:
        if isinstance(state, Found):
            return DO_NOTHING  # after the content it protects nothing, as in Ocsigen
        header = request.headers.get("authorization")
        credentials = parse_basic(header)
        if credentials is not None and await self._valid(header or "", *credentials):
            self.limiter.succeeded(request.client)
            request.stash["user"] = credentials[0]  # for later steps (ratelimit's key="user")
            return DO_NOTHING  # on to the protected content, with the current status
        user = credentials[0] if credentials is not None else None
        if header is not None:
            log.warning("authentication failed for %s from %s (realm %r)",
                        repr(user) if user is not None else "a malformed credential",
                        request.client, self.realm)
        delay = self.limiter.failed(request.client) if header is not None else 0.0
        if delay:
            await asyncio.sleep(delay)
        raise HTTPError(401, headers=self._challenge.copy())

    async def _valid(self, header: str, user: str, password: str) -> bool:
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        now = time.monotonic()
        until = self._remembered.get(key)
        if until is not None and until > now:
            return True
        if self._checks is None:
            self._checks = asyncio.Semaphore(CHECKS_AT_ONCE)
        async with self._checks:
            ok = await asyncio.to_thread(self.method.check, user, password)
        if ok:
            self._remembered[key] = now + REMEMBER
            self._remembered.move_to_end(key)
            while len(self._remembered) > REMEMBERED:
                self._remembered.popitem(last=False)
        return ok
