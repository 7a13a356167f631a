"""The answers to the CA's challenges, as files every process of the server reads.

The process that orders writes an answer before telling the CA to validate and removes it
afterwards; whichever worker the CA's connection lands on finds it there:

- **http-01**: ``GET /.well-known/acme-challenge/TOKEN`` on any HTTP port, before any host's
  steps, answers the key authorization (:func:`http01_response`);
- **tls-alpn-01** (RFC 8737): a handshake whose client offers only ``acme-tls/1`` for a name
  with a pending challenge gets the validation certificate (:class:`AlpnChallenges`). Python
  does not show the ClientHello to the SNI callback, so the ALPN list is read from the
  message itself through the context's message callback, only while it is in the default
  context (a switched connection stops calling it).

Private: not part of the extension API.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import re
import ssl
import weakref
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .store import write_atomically

if TYPE_CHECKING:
    from .shared import SharedStorage

log = logging.getLogger("ocsi.acme")

PREFIX = "/.well-known/acme-challenge/"
ACME_TLS = "acme-tls/1"
#: id-pe-acmeIdentifier (RFC 8737 §3)
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ChallengeFiles:
    """``<storage>/challenges/``: written by the ordering process, read by every worker."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.http_dir = os.path.join(root, "challenges", "http-01")
        self.alpn_dir = os.path.join(root, "challenges", "tls-alpn-01")
        #: The cluster's storage (:mod:`.shared`): answers go there too, for the other servers.
        self.share: SharedStorage | None = None

    def _publish(self, path: str, data: bytes, mode: int) -> str:
        write_atomically(path, data, mode)
        if self.share is not None:
            self.share.put(os.path.relpath(path, self.root).replace(os.sep, "/"), data)
        return path

    def put_http(self, token: str, key_authorization: str) -> str:
        if not _TOKEN.match(token):
            raise ValueError(f"the CA sent an unusable token {token!r}")
        return self._publish(os.path.join(self.http_dir, token), key_authorization.encode(), 0o644)

    def http(self, token: str) -> bytes | None:
        if not _TOKEN.match(token):
            return None
        try:
            with open(os.path.join(self.http_dir, token), "rb") as f:
                return f.read()
        except OSError:
            return None

    def alpn_path(self, name: str) -> str:
        return os.path.join(self.alpn_dir, name + ".pem")

    def put_alpn(self, name: str, key_authorization: str) -> str:
        return self._publish(self.alpn_path(name), validation_certificate(name, key_authorization),
                             0o600)

    def remove(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        if self.share is not None:
            self.share.delete(os.path.relpath(path, self.root).replace(os.sep, "/"))


def validation_certificate(name: str, key_authorization: str) -> bytes:
    """RFC 8737 §3: a self-signed certificate for ``name`` carrying the SHA-256 of the key
    authorization in a critical acmeIdentifier extension; key and certificate in one PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    digest = hashlib.sha256(key_authorization.encode()).digest()
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            # the extension's value is the DER OCTET STRING of the digest (tag 4, length 32)
            .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def offered_alpn(client_hello: bytes) -> list[str] | None:
    """The ALPN protocols of a ClientHello handshake message (``None``: no ALPN extension, or
    not a well-formed message). Bounded by the message's own lengths."""
    b = memoryview(client_hello)
    try:
        if b[0] != 1:
            return None
        i = 4 + 2 + 32  # header, version, random
        i += 1 + b[i]  # session id
        i += 2 + int.from_bytes(b[i:i + 2], "big")  # cipher suites
        i += 1 + b[i]  # compression methods
        end = min(len(b), i + 2 + int.from_bytes(b[i:i + 2], "big"))
        i += 2
        while i + 4 <= end:
            kind = int.from_bytes(b[i:i + 2], "big")
            size = int.from_bytes(b[i + 2:i + 4], "big")
            i += 4
            if kind == 16:  # application_layer_protocol_negotiation
                j, stop = i + 2, i + size
                if stop > end or stop > len(b):
                    return None
                protocols = []
                while j < stop:
                    n = b[j]
                    if j + 1 + n > stop:
                        return None
                    protocols.append(bytes(b[j + 1:j + 1 + n]).decode("ascii", "replace"))
                    j += 1 + n
                return protocols
            i += size
    except IndexError:
        return None
    return None


class AlpnChallenges:
    """Which handshakes are the CA's tls-alpn-01 validation, and their certificate."""

    def __init__(self, files: ChallengeFiles) -> None:
        self.files = files
        self._offered: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()
        self._contexts: dict[str, tuple[float, ssl.SSLContext]] = {}

    def watch(self, ctx: ssl.SSLContext) -> bool:
        """Read the ALPN list of every ClientHello arriving in ``ctx`` (the listeners'); whether
        this Python can (the message callback is CPython's since 3.8, not a public API).

        Only connections still in ``ctx`` call back: one switched to a host's context by SNI
        stops at once, so the cost is one parse per ClientHello."""
        if not hasattr(ctx, "_msg_callback"):
            return False
        ctx._msg_callback = self._message
        return True

    def _message(self, conn: Any, direction: str, version: Any, content_type: Any,
                 msg_type: Any, data: bytes) -> None:
        if direction == "read" and content_type == 22 and msg_type == 1:
            protocols = offered_alpn(data)
            if protocols is not None:
                try:
                    self._offered[conn] = protocols
                except TypeError:  # not weakly referenceable: no tls-alpn-01 on it
                    pass

    def is_validation(self, conn: Any) -> bool:
        """RFC 8737 §3: the CA offers ``acme-tls/1`` and nothing else."""
        return self._offered.get(conn) == [ACME_TLS]

    def context(self, name: str) -> ssl.SSLContext | None:
        """The validation context of ``name`` while its challenge is pending."""
        path = self.files.alpn_path(name)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            self._contexts.pop(name, None)
            return None
        cached = self._contexts.get(name)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(path)
        except (OSError, ssl.SSLError) as exc:
            log.warning("tls-alpn-01 certificate for %s unreadable: %s", name, exc)
            return None
        ctx.set_alpn_protocols([ACME_TLS])
        self._contexts[name] = (mtime, ctx)
        return ctx
