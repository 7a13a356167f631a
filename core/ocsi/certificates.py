"""Certificates made with ``cryptography`` for tests and local development.

``self_signed(names)`` is a certificate that is its own issuer; ``authority_and_certificate``
is a throwaway certificate authority and a server certificate it signed, which is what a
client that verifies (ocsi's revproxy, a browser) needs to be shown.

Private: not part of the extension API.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["authority_and_certificate", "self_signed"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(names: Sequence[str]) -> x509.SubjectAlternativeName:
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(alt)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


def self_signed(names: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
                days: int = 90) -> tuple[bytes, bytes]:
    """A fresh (certificate PEM, unencrypted key PEM) pair for ``names``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(names[0])
    cert = (_builder(subject, subject, key, days)
            .add_extension(_alt_names(names), critical=False).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _pem(key)


def new_authority(common_name: str = "ocsi test CA", days: int = 1) -> tuple[bytes, bytes]:
    """A new certificate authority: (certificate PEM, unencrypted key PEM)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(common_name)
    ca = (_builder(ca_name, ca_name, ca_key, days)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    return ca.public_bytes(serialization.Encoding.PEM), _pem(ca_key)


def issue(ca_pem: bytes, ca_key_pem: bytes, names: Sequence[str], days: int = 1) -> tuple[bytes, bytes]:
    """A server certificate for ``names`` signed by the authority: (certificate, key) PEM."""
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name(names[0]), ca.subject, key, days)
            .add_extension(_alt_names(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _pem(key)


def authority_and_certificate(names: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
                              days: int = 1) -> tuple[bytes, bytes, bytes]:
    """``(CA certificate, server certificate, server key)`` as PEM: a new CA that signed a
    certificate for ``names``."""
    ca, ca_key = new_authority(days=days)
    cert, key = issue(ca, ca_key, names, days)
    return ca, cert, key
