"""One ACME order with the ``acme`` library (the one certbot uses) and ``josepy``.

The library is synchronous: :class:`AcmeClient` runs in a thread of its own
(:mod:`.manager`), never on the event loop, so no request waits for the CA. It keeps the
account and the directory between orders. ``badNonce`` answers are retried (the library
retries once; a CA may reject several in a row), and the ``Retry-After`` of the CA's last
error answer is kept so that the manager waits at least that long.

Private: not part of the extension API.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from josepy.errors import Error as JoseError
from josepy.json_util import field
from josepy.jwa import ES256
from josepy.jwk import JWK, JWKEC
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .challenges import ChallengeFiles
from .config import AcmeSettings
from .renewal import MAX_POLL, RenewalInfo, certificate_id, pick, poll_delay
from .store import AcmeStore, new_key_pem, write_atomically

log = logging.getLogger("ocsi.acme")

#: How long one order may take, validation and issuance included.
ORDER_TIMEOUT = datetime.timedelta(seconds=90)
BAD_NONCE_RETRIES = 5
#: Seconds the other servers of a cluster get to copy the challenge answers (they are told at
#: once by NOTIFY) before the CA is asked to validate.
SHARE_DELAY = 1.0
#: The directory is read again after this long (a CA may start offering ``renewalInfo``).
DIRECTORY_TTL = 86400.0


@challenges.ChallengeResponse.register
class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """tls-alpn-01's answer to the CA: an empty object, the proof is in the handshake."""

    typ = "tls-alpn-01"


@challenges.Challenge.register
class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """RFC 8737's challenge (the library knows its framing, not this type)."""

    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: JWK, **unused: Any) -> str:
        return self.key_authorization(account_key)


class OrderFailed(Exception):
    """An order that did not give a certificate; ``retry_after``: seconds the CA asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReplacingOrder(messages.NewOrder):
    """A new order naming the certificate it replaces (RFC 9773, section 5): the library's
    ``NewOrder`` has no such field yet."""

    replaces: str | None = field("replaces", omitempty=True)


class _Client(client.ClientV2):
    """The library's client; while :attr:`replaces` is set, its new orders carry it."""

    replaces: str | None = None

    def _post(self, url: str, obj: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if self.replaces is not None and isinstance(obj, messages.NewOrder):
            fields = {name: getattr(obj, name) for name in obj._fields}
            obj = ReplacingOrder(replaces=self.replaces, **fields)
        return super()._post(url, obj, *args, **kwargs)


class _Network(client.ClientNetwork):
    """The library's network, retrying ``badNonce`` and remembering ``Retry-After``."""

    retry_after: float | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = super()._send_request(method, url, *args, **kwargs)
        if response.status_code in (429, 503) or (response.status_code >= 400
                                                   and "Retry-After" in response.headers):
            self.retry_after = _retry_after(response.headers.get("Retry-After"))
        return response

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for attempt in range(BAD_NONCE_RETRIES):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as exc:
                if exc.code != "badNonce" or attempt == BAD_NONCE_RETRIES - 1:
                    raise
                log.debug("badNonce from the CA, retrying")
        raise AssertionError("unreachable")


def _retry_after(value: str | None) -> float | None:
    """``Retry-After``: seconds, or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def trust_bundle(settings: AcmeSettings, store: AcmeStore) -> str | bool:
    """What ``requests`` verifies the directory with: the system's CAs, plus ``ca``."""
    if settings.ca is None:
        return True
    import certifi

    with open(certifi.where(), "rb") as f:
        system = f.read()
    with open(settings.ca, "rb") as f:
        extra = f.read()
    path = os.path.join(store.root, "ca-bundle.pem")
    write_atomically(path, system.rstrip(b"\n") + b"\n" + extra, 0o644)
    return path


class AcmeClient:
    """Orders certificates from one CA for one account. Used from one thread at a time."""

    def __init__(self, settings: AcmeSettings, store: AcmeStore, stop: threading.Event,
                 files: ChallengeFiles) -> None:
        self.settings = settings
        self.store = store
        self.files = files
        self.stop = stop
        key = serialization.load_pem_private_key(store.account_key(), None)
        self.account_key = JWKEC(key=key)
        self._client: _Client | None = None
        self._net: _Network | None = None
        #: The CA's directory and when it was read (``time.monotonic()``).
        self._directory: tuple[messages.Directory, float] | None = None

    def _network(self) -> _Network:
        if self._net is None:
            self._net = _Network(self.account_key, alg=ES256, user_agent="ocsi",
                                 verify_ssl=trust_bundle(self.settings, self.store))  # type: ignore[arg-type]
        return self._net

    def _get_directory(self) -> messages.Directory:
        if self._directory is None or time.monotonic() - self._directory[1] > DIRECTORY_TTL:
            self._directory = (client.ClientV2.get_directory(self.settings.directory,
                                                             self._network()), time.monotonic())
        return self._directory[0]

    def _connect(self) -> _Client:
        """The directory, and the account (made at the first order, found again after)."""
        if self._client is not None:
            return self._client
        self._net = self._directory = None  # a new start after a failure
        net = self._network()
        acme = _Client(self._get_directory(), net)
        registration = messages.NewRegistration.from_data(
            email=self.settings.email, terms_of_service_agreed=self.settings.accept_terms)
        try:
            acme.new_account(registration)
            log.info("ACME account created at %s", self.settings.directory)
        except errors.ConflictError as exc:  # the key already has an account: use it
            net.account = messages.RegistrationResource(uri=exc.location,
                                                        body=messages.Registration())
            net.account = acme.query_registration(net.account)
        self._client = acme
        return acme

    def renewal_info(self, cert: x509.Certificate) -> RenewalInfo:
        """The CA's suggested renewal window for ``cert`` (RFC 9773): an unauthenticated GET of
        ``renewalInfo/ID`` through the library's network object, parsed by the library's
        ``RenewalInfo``. Without ``renewalInfo`` in the directory, a :class:`RenewalInfo`
        without a window; :class:`OrderFailed` when the CA cannot be asked."""
        cert_id = certificate_id(cert)
        if cert_id is None:  # no AKI: the CA cannot be asked about it
            return RenewalInfo("", None, None, None, time.time() + MAX_POLL, False)
        try:
            directory = self._get_directory()
            try:
                base = str(directory["renewalInfo"])
            except KeyError:
                return RenewalInfo(cert_id, None, None, None, time.time() + MAX_POLL, False)
            response = self._network().get(f"{base.rstrip('/')}/{cert_id}",
                                           content_type="application/json")
            document = response.json()
            window = messages.RenewalInfo.from_json(document).suggested_window
            start, end = _aware(window.start), _aware(window.end)
        except (requests.RequestException, errors.Error, messages.Error, JoseError,
                ValueError, TypeError) as exc:
            self._directory = None
            raise OrderFailed(f"cannot get the renewal window from the CA: {_short(exc)}",
                              self._last_retry_after()) from None
        if start is None or end is None or end <= start:
            raise OrderFailed(f"the CA's renewal window {window.start} to {window.end} is not a window")
        explanation = document.get("explanationURL") if isinstance(document, dict) else None
        retry_after = _retry_after(response.headers.get("Retry-After"))
        return RenewalInfo(cert_id, start, end, pick(start, end),
                           time.time() + poll_delay(retry_after), True,
                           explanation if isinstance(explanation, str) else None)

    def obtain(self, names: Sequence[str], replaces: str | None = None) -> tuple[bytes, bytes]:
        """A new key and a certificate chain for ``names`` (PEM), or :class:`OrderFailed`.
        ``replaces``: the identifier of the certificate this one renews (RFC 9773); a CA
        refusing it (already replaced, unknown) gets the order again without it."""
        try:
            try:
                return self._obtain(names, replaces)
            except messages.Error as exc:
                if replaces is None or not (str(exc.typ).endswith(":alreadyReplaced")
                                            or exc.code in ("malformed", "conflict")):
                    raise
                log.warning("the CA refused an order replacing %s (%s); ordering without "
                            "naming it", replaces, exc)
                return self._obtain(names, None)
        except OrderFailed:
            raise
        except errors.ValidationError as exc:
            raise OrderFailed(_validation_error(exc)) from None
        except messages.Error as exc:
            if exc.code in ("accountDoesNotExist", "unauthorized"):
                self._client = None  # the CA forgot the account: register again next time
            raise OrderFailed(f"the CA refused: {exc}", self._last_retry_after()) from None
        except errors.Error as exc:
            raise OrderFailed(f"{type(exc).__name__}: {exc}", self._last_retry_after()) from None
        except requests.RequestException as exc:
            self._client = None
            raise OrderFailed(f"cannot reach the CA at {self.settings.directory}: "
                              f"{_short(exc)}") from None

    def _last_retry_after(self) -> float | None:
        value = self._net.retry_after if self._net is not None else None
        if self._net is not None:
            self._net.retry_after = None
        return value

    def _obtain(self, names: Sequence[str], replaces: str | None) -> tuple[bytes, bytes]:
        acme = self._connect()
        key_pem = new_key_pem()
        acme.replaces = replaces
        try:
            order = acme.new_order(crypto_util.make_csr(key_pem, list(names)))
        finally:
            acme.replaces = None
        published: list[str] = []
        answers: list[tuple[messages.ChallengeBody, Any]] = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue
                name = authz.body.identifier.value
                challb = self._pick(authz.body.challenges, name)
                response, validation = challb.chall.response_and_validation(self.account_key)
                if challb.chall.typ == "http-01":
                    published.append(self.files.put_http(challb.chall.encode("token"), validation))
                else:
                    published.append(self.files.put_alpn(name, validation))
                answers.append((challb, response))
            if answers and self.files.share is not None:
                self.stop.wait(SHARE_DELAY)  # the other servers of the cluster copy the answers
            for challb, response in answers:
                if self.stop.is_set():
                    raise OrderFailed("the server is stopping")
                acme.answer_challenge(challb, response)
            deadline = datetime.datetime.now() + ORDER_TIMEOUT
            order = acme.poll_and_finalize(order, deadline)
        finally:
            for path in published:
                self.files.remove(path)
        if not order.fullchain_pem:
            raise OrderFailed("the CA finalized the order without a certificate")
        return key_pem, order.fullchain_pem.encode()

    def _pick(self, offered: Sequence[messages.ChallengeBody], name: str) -> messages.ChallengeBody:
        for kind in self.settings.challenges:
            for challb in offered:
                if challb.chall.typ == kind:
                    return challb
        raise OrderFailed(f"the CA offers none of the challenges {' '.join(self.settings.challenges)} "
                          f"for {name} (it offers {' '.join(c.chall.typ for c in offered)})")


def _validation_error(exc: errors.ValidationError) -> str:
    parts = []
    for authz in exc.failed_authzrs:
        for challb in authz.body.challenges:
            if challb.error is not None:
                detail = challb.error.detail or challb.error.typ
                parts.append(f"{authz.body.identifier.value}: {challb.chall.typ} failed: {detail}")
    return "validation failed: " + ("; ".join(parts) or str(exc))


def _aware(when: datetime.datetime | None) -> datetime.datetime | None:
    """A time from the CA, in UTC (RFC 3339 times carry their offset; a bare one is UTC)."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=datetime.timezone.utc)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"

