"""TLS: server contexts from ``<ssl>`` and from ``<host certificate privatekey>``
(certificates for tests and local use: :mod:`.certificates`; choosing one by SNI: :mod:`.sni`).

Keys and certificates are checked with ``cryptography`` when the configuration is loaded, so a
mismatched pair, an unreadable file, an expired certificate or one that does not name the
host is a located configuration error rather than a failure of the first handshake.

Private: not part of the extension API.
"""

from __future__ import annotations

import datetime
import getpass
import logging
import ssl
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .certificates import self_signed
from ._config.errors import ConfigError
from ._config.settings import SSLSettings

__all__ = ["WrongPassword", "host_context", "self_signed", "server_context"]

log = logging.getLogger("ocsi.tls")

#: A certificate expiring sooner than this is announced at every load.
EXPIRY_WARNING = datetime.timedelta(days=30)


class WrongPassword(ConfigError):
    exit_code = 10


class KeyNeedsPassword(ConfigError):
    """The key is encrypted and there is no way to ask for its password here."""


def _read(path: str, what: str, where: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the SSL {what} {path}: {exc.strerror}", where=where) from None


def _parse_certificate(pem: bytes, path: str, where: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise ConfigError(f"{path} is not a PEM certificate", where=where) from None


def _check_pair(cert_path: str, key_path: str, where: str, password: str | None,
                ask: str | None) -> tuple[x509.Certificate, str | None]:
    """The certificate, checked against its key and its dates; the key's password (asked on
    the terminal when ``ask`` says for what, else a located error)."""
    cert_pem = _read(cert_path, "certificate", where)
    key_pem = _read(key_path, "key", where)
    cert = _parse_certificate(cert_pem, cert_path, where)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:  # encrypted
        if password is None:
            if ask is None:
                raise KeyNeedsPassword(f"the key {key_path} is protected by a password",
                                       where=where,
                                       hint="a host's key must be readable without a password: "
                                            "openssl pkey -in KEY -out KEY.plain") from None
            password = getpass.getpass(f"Please enter the password for {ask}: ")
        try:
            key = serialization.load_pem_private_key(key_pem, password=password.encode())
        except ValueError:
            raise WrongPassword("wrong password for the SSL key", where=where) from None
    except ValueError:
        raise ConfigError(f"{key_path} is not a PEM private key", where=where) from None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]  # every key type of a TLS key has numbers
        raise ConfigError(f"the SSL certificate {cert_path} and key {key_path} do not match",
                          where=where)
    _check_dates(cert, cert_path, where)
    return cert, password


def _check_dates(cert: x509.Certificate, path: str, where: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc <= now:
        raise ConfigError(f"the certificate {path} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
                          where=where, hint="renew it")
    if cert.not_valid_before_utc > now:
        raise ConfigError(f"the certificate {path} is not valid before "
                          f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC", where=where)
    if cert.not_valid_after_utc - now < EXPIRY_WARNING:
        log.warning("%s: the certificate %s expires on %s", where, path,
                    f"{cert.not_valid_after_utc:%Y-%m-%d}")


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names a certificate is for (its subject alternative names, else its CN)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [n.lower() for n in ext.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def covers(names: Sequence[str], host: str) -> bool:
    """Whether a certificate naming ``names`` is valid for ``host`` (RFC 6125: a ``*`` is the
    whole leftmost label and matches exactly one label). A hostfilter wildcard
    (``*.example.org``) is covered only by the same wildcard."""
    host = host.lower().rstrip(".")
    for name in names:
        if name == host:
            return True
        if name.startswith("*.") and "*" not in host:
            first, _, rest = host.partition(".")
            if first and rest == name[2:]:
                return True
    return False


def _context(cert_path: str | None, key_path: str | None, password: str | None,
             options: SSLSettings | None, where: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if cert_path is not None:
        ctx.load_cert_chain(cert_path, key_path, password=password)
    ctx.set_alpn_protocols(["h2", "http/1.1"])  # HTTP/2 first (.http.h2conn)
    if options is None:
        return ctx
    try:
        if options.ciphers:
            ctx.set_ciphers(options.ciphers)
        if options.dhfile:
            ctx.load_dh_params(options.dhfile)
        if options.curve:
            ctx.set_ecdh_curve(options.curve)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"invalid SSL option: {exc}", where=where) from None
    return ctx


def server_context(s: SSLSettings, ports: str = "", password: str | None = None,
                   prompt: bool = True) -> ssl.SSLContext:
    """The context of the HTTPS listeners (``<ssl>``): asks for the key's password on the
    terminal when needed, unless ``prompt`` is false (a reload)."""
    assert s.certificate and s.privatekey
    ask = f"the HTTPS server listening on port(s) {ports}" if prompt else None
    _, password = _check_pair(s.certificate, s.privatekey, s.where, password, ask)
    return _context(s.certificate, s.privatekey, password, s, s.where)


def listener_context(options: SSLSettings | None) -> ssl.SSLContext:
    """The HTTPS listeners' context when every certificate comes from ACME (no ``<ssl>``): it
    has none itself, the SNI callback (:mod:`.sni`) gives each handshake its host's."""
    return _context(None, None, None, options, options.where if options else "?")


def acme_context(pem_path: str, options: SSLSettings | None) -> ssl.SSLContext:
    """The context of an ACME certificate: chain and key in one file already checked when
    it was stored (:mod:`.acme.store`)."""
    return _context(pem_path, None, None, options, options.where if options else "?")


def check_server_pair(s: SSLSettings) -> str | None:
    """``ocsi --check``: the ``<ssl>`` pair read and checked as at start (files, formats, the
    pair, the dates), without asking for a password. For a protected key, the certificate is
    checked alone and a note is returned: the pair is checked at start, once the password is
    given."""
    assert s.certificate and s.privatekey
    try:
        _check_pair(s.certificate, s.privatekey, s.where, None, None)
    except KeyNeedsPassword:
        pem = _read(s.certificate, "certificate", s.where)
        _check_dates(_parse_certificate(pem, s.certificate, s.where), s.certificate, s.where)
        return f"the key {s.privatekey} is protected by a password, asked at start"
    return None


def host_context(certificate: str, privatekey: str, hostnames: Sequence[str],
                 options: SSLSettings | None, where: str) -> ssl.SSLContext:
    """The context of one ``<host certificate privatekey>``: the certificate must name every
    name of the host's ``hostfilter`` (``hostnames``, without ports)."""
    cert, _ = _check_pair(certificate, privatekey, where, None, None)
    names = certificate_names(cert)
    for host in hostnames:
        if not covers(names, host):
            raise ConfigError(f"the certificate {certificate} does not cover {host} "
                              f"(it names {', '.join(names) or 'nothing'})", where=where)
    return _context(certificate, privatekey, None, options, where)
