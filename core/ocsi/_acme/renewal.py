"""When to renew a certificate: the CA's suggestion (ARI, RFC 9773), else a third of its lifetime.

A CA whose directory has ``renewalInfo`` publishes, for each certificate it issued, a
suggested renewal window: usually around two thirds of the lifetime, earlier when it is about
to revoke the certificate (a mis-issuance, a compromised intermediate). The server asks for the
window of each certificate it holds, renews at a time drawn uniformly inside it (a fleet
spreads its orders over the window), asks again when the CA's ``Retry-After`` says (held
between a minute and a day, as the RFC advises), and names the certificate it replaces in the
new order (``replaces``), which lets the CA exempt the renewal from some rate limits.

Without ARI, or while the CA cannot be asked, the renewal is due when a third of the lifetime
is left, with a jitter of up to a thirtieth of the lifetime.

Private: not part of the extension API.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass

from cryptography import x509
from josepy.b64 import b64encode

#: Bounds of the delay between two questions about one certificate (RFC 9773, 4.3.3).
MIN_POLL = 60.0
MAX_POLL = 86400.0
#: The delay when the CA gives no ``Retry-After`` or cannot be reached (RFC 9773, 4.3.3).
DEFAULT_POLL = 6 * 3600.0


def certificate_id(cert: x509.Certificate) -> str | None:
    """RFC 9773's identifier: base64url(Authority Key Identifier's keyIdentifier) "."
    base64url(DER of the serial number's INTEGER content); ``None`` without an AKI."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    if aki.key_identifier is None:
        return None
    serial = cert.serial_number
    # two's complement, shortest form: one more bit than the magnitude for the sign
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
    return f"{b64encode(aki.key_identifier).decode()}.{b64encode(serial_bytes).decode()}"


def poll_delay(retry_after: float | None) -> float:
    """Seconds until the window is asked for again: the CA's ``Retry-After`` within
    [:data:`MIN_POLL`, :data:`MAX_POLL`], :data:`DEFAULT_POLL` without one."""
    if retry_after is None:
        return DEFAULT_POLL
    return min(max(retry_after, MIN_POLL), MAX_POLL)


def pick(start: datetime.datetime, end: datetime.datetime) -> datetime.datetime:
    """A time drawn uniformly in the window ``[start, end]``."""
    return start + (end - start) * random.random()


@dataclass(frozen=True, slots=True)
class RenewalInfo:
    """What the CA said about one certificate, and when to ask again."""

    #: The certificate asked about (:func:`certificate_id`).
    cert_id: str
    #: The suggested window; both ``None`` when the CA offers no ARI or could not be asked.
    start: datetime.datetime | None
    end: datetime.datetime | None
    #: The time drawn inside the window (``None`` without a window).
    renew_at: datetime.datetime | None
    #: When to ask again (epoch seconds).
    next_check: float
    #: Whether the CA's directory has ``renewalInfo`` (then orders carry ``replaces``).
    offered: bool
    #: The CA's ``explanationURL``, when it moved a window (revocation, incident).
    explanation: str | None = None
