"""TLS: server contexts from ``<ssl>`` (certificates for tests and local use: :mod:`.certificates`).

Key and certificate are checked with ``cryptography`` when the configuration is loaded, so a
mismatched pair or an unreadable file is a located configuration error rather than a failure
of the first handshake.
"""

from __future__ import annotations

import getpass
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .certificates import self_signed
from .config.errors import ConfigError
from .config.settings import SSLSettings

__all__ = ["WrongPassword", "self_signed", "server_context"]


class WrongPassword(ConfigError):
    exit_code = 10


def _read(path: str, what: str, where: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the SSL {what} {path}: {exc.strerror}", where=where) from None


def server_context(s: SSLSettings, ports: str = "", password: str | None = None) -> ssl.SSLContext:
    """An SSL context for the HTTPS listeners; prompts for the key's password when needed."""
    assert s.certificate and s.privatekey
    cert_pem = _read(s.certificate, "certificate", s.where)
    key_pem = _read(s.privatekey, "key", s.where)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ConfigError(f"{s.certificate} is not a PEM certificate", where=s.where) from None
    key = None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:  # encrypted
        if password is None:
            password = getpass.getpass(
                f"Please enter the password for the HTTPS server listening on port(s) {ports}: ")
        try:
            key = serialization.load_pem_private_key(key_pem, password=password.encode())
        except ValueError:
            raise WrongPassword("wrong password for the SSL key", where=s.where) from None
    except ValueError:
        raise ConfigError(f"{s.privatekey} is not a PEM private key", where=s.where) from None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise ConfigError("the SSL certificate and key do not match", where=s.where)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(s.certificate, s.privatekey, password=password)
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        if s.ciphers:
            ctx.set_ciphers(s.ciphers)
        if s.dhfile:
            ctx.load_dh_params(s.dhfile)
        if s.curve:
            ctx.set_ecdh_curve(s.curve)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"invalid SSL option: {exc}", where=s.where) from None
    return ctx
