"""The ``<ratelimit>`` and ``<connlimit>`` steps: count the request, then let it go on, make it
wait, or refuse it with ``Retry-After``.

A step counts a request once, even when the request passes it again (a ``RetryWith``, a
site restored): the mark is in ``request.stash``, shared by every copy of the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ocsi import DO_NOTHING, ConfigError, Found, Headers, HTTPError, Step

from .bucket import Bucket
from .cluster import ClusterBucket
from .connections import Counter
from .table import SharedTable

if TYPE_CHECKING:
    from ocsi import Answer, Request, State

log = logging.getLogger("ocsi.ext.ratelimit")

#: ``request.stash`` entry: the connlimit counts to give back when the response has been sent.
RELEASES = "ocsi_ext_ratelimit.releases"
#: ``request.stash`` entry an authentication step sets to the user's name (authbasic does).
USER = "user"

KeyFunction = Callable[["Request"], "str | None"]


def key_function(spec: str) -> KeyFunction:
    """What a request is counted under, from ``key="…"``: ``ip`` (the client address, as
    accesscontrol's trusted forwarding left it), ``header:NAME`` (requests without the header
    are not counted, as nginx does with an empty key), or ``user`` (the authenticated user,
    else the client address). Raises ``ValueError`` for anything else."""
    if spec == "ip":
        return lambda request: "ip " + request.client
    if spec == "user":
        def user(request: Request) -> str:
            name = request.stash.get(USER)
            return f"user {name}" if isinstance(name, str) else "ip " + request.client
        return user
    if spec.startswith("header:") and spec[7:].strip():
        name = spec[7:].strip().lower()

        def header(request: Request) -> str | None:
            value = request.headers.get(name)
            return None if value is None or not value.strip() else "h " + value.strip()
        return header
    raise ValueError(f'key must be "ip", "user" or "header:NAME", not {spec!r}')


class _Limit(Step):
    """What both steps share: the key, the refusal, the mark against counting twice."""

    def __init__(self, table: SharedTable, key: KeyFunction, status: int) -> None:
        self.table = table
        self.key = key
        self.status = status
        self._mark = f"ocsi_ext_ratelimit.{id(self)}"

    async def provision(self) -> None:
        """Open the table now: a file that cannot be made fails the load, located."""
        try:
            self.table.ensure_open()
        except OSError as exc:
            raise ConfigError(f"cannot open the table {self.table.path}: {exc}", where=self.where,
                              hint="<datadir> must be a directory the server can write") from None

    def _first_time(self, request: Request) -> bool:
        stash = request.stash
        if self._mark in stash:
            return False
        stash[self._mark] = True
        return True

    async def _refuse(self, state: State, retry_after: int | None) -> Answer:
        if isinstance(state, Found):
            await state.response.body.aclose()
        headers = Headers([("retry-after", str(retry_after))] if retry_after else [])
        raise HTTPError(self.status, "rate limited", headers=headers)


class RateLimit(_Limit):
    def __init__(self, bucket: Bucket, key: KeyFunction, status: int,
                 cluster: ClusterBucket | None = None) -> None:
        super().__init__(bucket.table, key, status)
        self.bucket = bucket
        #: ``shared="cluster"``: the count is the database's, not the machine's table's
        self.cluster = cluster

    async def handle(self, request: Request, state: State) -> Answer:
        key = self.key(request)
        if key is None or not self._first_time(request):
            return DO_NOTHING
        cluster = self.cluster
        verdict = self.bucket.take(key) if cluster is None else await cluster.take(key)
        if not verdict.accepted:
            log.warning("limiting requests of %s (excess %.3f) at %s: %s %s", key, verdict.excess,
                     self.where, request.method, request.target)
            return await self._refuse(state, verdict.retry_after)
        if verdict.delay:
            log.warning("delaying a request of %s by %.3f s (excess %.3f) at %s", key,
                     verdict.delay, verdict.excess, self.where)
            try:
                await asyncio.wait_for(request.wait_client_gone(), verdict.delay)
            except TimeoutError:
                return DO_NOTHING  # waited its turn
            log.warning("the client of a delayed request (%s) has gone", key)
            return await self._refuse(state, None)
        return DO_NOTHING


class _Release:
    """One count to give back; given back at most once, at the latest when the request is
    collected (a request whose response never went out must not hold its count)."""

    __slots__ = ("counter", "digest")

    def __init__(self, counter: Counter, digest: bytes) -> None:
        self.counter: Counter | None = counter
        self.digest = digest

    def __call__(self) -> None:
        counter, self.counter = self.counter, None
        if counter is not None:
            counter.release(self.digest)

    def __del__(self) -> None:
        try:
            self()
        except Exception:  # noqa: BLE001 - at collection, nobody to tell
            log.exception("giving back a connlimit count failed")


class ConnLimit(_Limit):
    def __init__(self, counter: Counter, key: KeyFunction, status: int) -> None:
        super().__init__(counter.table, key, status)
        self.counter = counter

    async def handle(self, request: Request, state: State) -> Answer:
        key = self.key(request)
        if key is None or not self._first_time(request):
            return DO_NOTHING
        digest = self.counter.acquire(key)
        if digest is None:
            log.warning("limiting requests in progress of %s to %d at %s: %s %s", key,
                     self.counter.maximum, self.where, request.method, request.target)
            return await self._refuse(state, 1)
        request.stash.setdefault(RELEASES, []).append(_Release(self.counter, digest))
        return DO_NOTHING


def release_counts(request: Request) -> None:
    """The response of ``request`` has been sent: give back its connlimit counts."""
    releases = request.stash.pop(RELEASES, None)
    if releases:
        for release in releases:
            release()
