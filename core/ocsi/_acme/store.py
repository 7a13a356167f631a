"""Where ACME keeps its account key, certificates and their state: ``<datadir>/acme/``.

Layout (every file written whole to a temporary name then renamed, so a reader — another
worker, a server starting — sees the old file or the new one, never half of one; private
keys are 0600)::

    account.key                      the account's key, made once (EC P-256, PEM)
    certs/NAME/certificate.pem       key and chain in one file: one rename changes both
    certs/NAME/state.json            names, last attempt, last error, failures
    challenges/http-01/TOKEN         key authorizations while an order waits for the CA
    challenges/tls-alpn-01/NAME.pem  RFC 8737 validation certificates (key and certificate)

``NAME`` is the first name of the host's hostfilter.

Private: not part of the extension API.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def write_atomically(path: str, data: bytes, mode: int = 0o600) -> None:
    """``path`` replaced by ``data`` in one rename, created with ``mode``."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def new_key_pem() -> bytes:
    """A fresh EC P-256 private key: small, fast, accepted by every CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class CertState:
    """What ``ocsi cert status`` shows of a name set besides the certificate itself."""

    names: list[str]
    last_attempt: float | None = None
    last_error: str | None = None
    failures: int = 0
    #: When the next order may start (backoff, ``Retry-After``), epoch seconds.
    not_before: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredCertificate:
    path: str
    names: tuple[str, ...]
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    mtime: float
    #: RFC 9773's identifier (what the CA's renewal window and ``replaces`` name).
    cert_id: str | None = None
    #: The certificate itself (the first of the chain).
    cert: x509.Certificate | None = None

    @property
    def lifetime(self) -> datetime.timedelta:
        return self.not_after - self.not_before


class AcmeStore:
    """The files of one storage directory."""

    def __init__(self, root: str) -> None:
        self.root = root

    # -- account ----------------------------------------------------------------------------
    def account_key(self) -> bytes:
        """The account's key, made on first use and kept."""
        path = os.path.join(self.root, "account.key")
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            pem = new_key_pem()
            write_atomically(path, pem)
            return pem

    # -- certificates -----------------------------------------------------------------------
    def cert_dir(self, names: Sequence[str]) -> str:
        return os.path.join(self.root, "certs", names[0])

    def certificate_path(self, names: Sequence[str]) -> str:
        return os.path.join(self.cert_dir(names), "certificate.pem")

    def save_certificate(self, names: Sequence[str], key_pem: bytes, chain_pem: bytes) -> None:
        write_atomically(self.certificate_path(names), key_pem.rstrip(b"\n") + b"\n" + chain_pem)

    def certificate(self, names: Sequence[str]) -> StoredCertificate | None:
        """The stored certificate when it covers ``names`` (``None``: none yet, or unreadable)."""
        path = self.certificate_path(names)
        try:
            mtime = os.stat(path).st_mtime
            with open(path, "rb") as f:
                pem = f.read()
            cert = x509.load_pem_x509_certificates(pem)[0]
        except (OSError, ValueError, IndexError):
            return None
        from ..tls import certificate_names
        from .renewal import certificate_id

        covered = certificate_names(cert)
        if not all(n in covered for n in names):
            return None
        return StoredCertificate(path, tuple(covered), cert.issuer.rfc4514_string(),
                                 cert.not_valid_before_utc, cert.not_valid_after_utc, mtime,
                                 certificate_id(cert), cert)

    # -- state ------------------------------------------------------------------------------
    def state(self, names: Sequence[str]) -> CertState:
        try:
            with open(os.path.join(self.cert_dir(names), "state.json"), encoding="utf-8") as f:
                data = json.load(f)
            return CertState(list(names), data.get("last_attempt"), data.get("last_error"),
                             int(data.get("failures", 0)), data.get("not_before"),
                             data.get("extra", {}))
        except (OSError, ValueError):
            return CertState(list(names))

    def save_state(self, state: CertState) -> None:
        data = {"names": state.names, "last_attempt": state.last_attempt,
                "last_error": state.last_error, "failures": state.failures,
                "not_before": state.not_before, "extra": state.extra}
        write_atomically(os.path.join(self.cert_dir(state.names), "state.json"),
                         json.dumps(data, indent=1).encode(), 0o644)

    def names_sets(self) -> list[list[str]]:
        """Every name set with a state file (``ocsi cert status`` without a configuration)."""
        out = []
        base = os.path.join(self.root, "certs")
        for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            try:
                with open(os.path.join(base, entry, "state.json"), encoding="utf-8") as f:
                    out.append(list(json.load(f)["names"]))
            except (OSError, ValueError, KeyError):
                continue
        return out
