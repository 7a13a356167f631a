"""The small pure parts of ocsi.acme: the ClientHello's ALPN list, Retry-After, the renewal
time, the validation certificate of tls-alpn-01."""

from __future__ import annotations

import datetime
import hashlib
import ssl

import pytest
from cryptography import x509

from ocsi.acme.challenges import ACME_IDENTIFIER, offered_alpn, validation_certificate
from ocsi.acme.client import _retry_after
from ocsi.acme.manager import renewal_time
from ocsi.acme.store import StoredCertificate


def client_hello(protocols: list[str] | None) -> bytes:
    """The ClientHello handshake message Python's own client sends (no record header)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if protocols:
        ctx.set_alpn_protocols(protocols)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="a.example.com")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()[5:]


def test_alpn_lists_are_read_from_real_client_hellos():
    assert offered_alpn(client_hello(["acme-tls/1"])) == ["acme-tls/1"]
    assert offered_alpn(client_hello(["h2", "http/1.1"])) == ["h2", "http/1.1"]
    assert offered_alpn(client_hello(None)) is None


def test_truncated_or_foreign_messages_give_nothing():
    hello = client_hello(["acme-tls/1"])
    for cut in range(0, len(hello), 7):
        assert offered_alpn(hello[:cut]) in (None, ["acme-tls/1"])
    assert offered_alpn(b"\x02" + hello[1:]) is None  # a ServerHello


def test_retry_after_seconds_and_dates():
    assert _retry_after("120") == 120
    assert _retry_after(None) is None and _retry_after("soon") is None
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    value = _retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert value is not None and 3500 < value <= 3600


def test_renewal_when_a_third_is_left_with_jitter():
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    cert = StoredCertificate("x", ("a",), "CN=CA", start, start + datetime.timedelta(days=90), 0.0)
    assert renewal_time(cert, 0.0) == start + datetime.timedelta(days=60)
    assert renewal_time(cert, 1.0) == start + datetime.timedelta(days=57)


def test_validation_certificate_follows_rfc_8737():
    pem = validation_certificate("a.example.com", "token.thumbprint")
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE"):])
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER)
    assert ext.critical
    assert ext.value.value == b"\x04\x20" + hashlib.sha256(b"token.thumbprint").digest()
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["a.example.com"]
