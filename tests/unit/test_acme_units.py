"""The small pure parts of ocsi._acme: the ClientHello's ALPN list, Retry-After, the renewal
time, the validation certificate of tls-alpn-01."""

from __future__ import annotations

import datetime
import hashlib
import ssl

import pytest
from cryptography import x509

from ocsi._acme.challenges import ACME_IDENTIFIER, offered_alpn, validation_certificate
from ocsi._acme.client import _retry_after
from ocsi._acme.manager import renewal_time
from ocsi._acme.store import StoredCertificate


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


def _certificate(serial: int, aki: bytes | None) -> x509.Certificate:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "a.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    if aki is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), False)
    return builder.sign(key, hashes.SHA256())


def test_certificate_identifier_is_rfc_9773s_example():
    """RFC 9773, section 4.1: keyIdentifier 69:88:5B:…:D4 and serial 00:87:65:43:21."""
    from ocsi._acme.renewal import certificate_id

    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert certificate_id(_certificate(0x87654321, aki)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert certificate_id(_certificate(0x7f, aki)).endswith(".fw")  # no sign byte needed
    assert certificate_id(_certificate(5, None)) is None


def test_renewal_window_polling_is_bounded_and_the_time_inside_the_window():
    from ocsi._acme.renewal import DEFAULT_POLL, MAX_POLL, MIN_POLL, pick, poll_delay

    assert poll_delay(1) == MIN_POLL == 60
    assert poll_delay(3600) == 3600
    assert poll_delay(10 * 86400) == MAX_POLL == 86400
    assert poll_delay(None) == DEFAULT_POLL == 6 * 3600
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    end = start + datetime.timedelta(days=2)
    times = [pick(start, end) for _ in range(200)]
    assert all(start <= t <= end for t in times)
    assert len(set(times)) > 100  # drawn, not fixed


def test_expiry_warning_fourteen_days_or_a_sixth_of_a_short_lifetime():
    from ocsi._acme.manager import expiry_warning

    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)

    def cert(days: float) -> StoredCertificate:
        return StoredCertificate("x", ("a",), "CN=CA", start, start + datetime.timedelta(days=days), 0.0)

    assert expiry_warning(cert(90)) == datetime.timedelta(days=14)
    assert expiry_warning(cert(6)) == datetime.timedelta(days=1)  # Let's Encrypt's short-lived


def test_certificate_identifier_agrees_with_the_acme_librarys_own():
    """The library computes the same identifier for its renewal_time() (a private helper)."""
    from acme.client import _renewal_info_path_component

    from ocsi._acme.renewal import certificate_id

    for serial in (1, 0x7f, 0x80, 0xff, 0x87654321, 2**159 - 1):
        cert = _certificate(serial, bytes(range(20)))
        assert certificate_id(cert) == _renewal_info_path_component(cert)
