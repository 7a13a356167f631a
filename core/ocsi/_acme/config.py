"""``<acme email directory ca challenges>`` in ``<server>`` and ``acme="true"`` on ``<host>``.

Everything a configuration can get wrong is reported where it is written, at load (and by
``ocsi --check``): a bad email, an unreadable ``ca``, an unknown challenge, a wildcard name
(only dns-01 could validate it, and dns-01 is not supported), no HTTPS port, no HTTP port
while http-01 is the only challenge, nowhere to keep the certificates.

Private: not part of the extension API.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._config.errors import ConfigError
from .._config.values import parse_bool, parse_seconds
from .._config.xml import Element
from .._http.hostport import split_host_port

if TYPE_CHECKING:
    from .._config.settings import ServerSettings
    from .._pipeline.engine import HostPattern

#: Let's Encrypt's production directory: what ``<acme>`` talks to unless told otherwise.
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
CHALLENGES = ("tls-alpn-01", "http-01")
ACME_ATTRIBUTES = ("email", "directory", "ca", "challenges", "storage", "accept-terms", "retry")
#: An address the CA will accept as a contact: one ``@``, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>.]+$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    """The CA to talk to and how."""

    email: str | None
    directory: str
    #: An extra CA file trusted for the directory's HTTPS (a private or test CA).
    ca: str | None
    #: Challenge types in the order they are tried.
    challenges: tuple[str, ...]
    #: Where accounts, certificates and keys live (``storage=``, else ``<datadir>/acme``).
    storage: str | None
    accept_terms: bool
    #: The delay before the first retry of a failed order, doubled at each failure (max 1 day).
    retry: float
    where: str

    def storage_dir(self, datadir: str | None) -> str:
        assert self.storage or datadir
        return self.storage or os.path.join(datadir or "", "acme")


@dataclass(frozen=True, slots=True)
class AcmeHost:
    """A ``<host acme="true">``: one certificate for every exact name of its hostfilter."""

    patterns: tuple[HostPattern, ...]
    names: tuple[str, ...]
    where: str


def parse_acme(el: Element) -> AcmeSettings:
    """``<acme>``: attributes only, each checked here."""
    el.check(attributes=ACME_ATTRIBUTES)
    email = el.get("email")
    if email is not None and not _EMAIL.match(email.strip()):
        raise el.error(f"email=\"{email}\" is not an email address",
                       hint='the CA writes to it about expiring certificates: email="admin@example.org"')
    directory = (el.get("directory") or LETS_ENCRYPT).strip()
    url = urlsplit(directory)
    if url.scheme != "https" or not url.hostname:
        raise el.error(f"directory=\"{directory}\" is not an https:// URL",
                       hint=f"the CA's directory URL, such as {LETS_ENCRYPT}")
    ca = el.get("ca")
    if ca is not None:
        _check_ca(el, ca)
    challenges = tuple((el.get("challenges") or " ".join(CHALLENGES)).split())
    for c in challenges:
        if c == "dns-01":
            raise el.error("the dns-01 challenge is not supported",
                           hint="use tls-alpn-01 and/or http-01 (wildcard names need dns-01, "
                                "so they cannot have an automatic certificate)")
        if c not in CHALLENGES:
            raise el.error(f"unknown challenge {c!r}", hint="known: " + ", ".join(CHALLENGES))
    if not challenges or len(set(challenges)) != len(challenges):
        raise el.error("challenges must list tls-alpn-01 and/or http-01, each once")
    retry = el.attr_value("retry", parse_seconds, 60.0)
    accept = el.attr_value("accept-terms", parse_bool, True)
    if retry < 1:
        raise el.error("retry must be at least 1 second",
                       hint="a failing name is never retried in a tight loop")
    if importlib.util.find_spec("acme") is None or importlib.util.find_spec("josepy") is None:
        raise el.error("<acme> needs the acme and josepy libraries",
                       hint="pip install 'ocsi[acme]'")
    return AcmeSettings(email.strip() if email else None, directory, ca, challenges,
                        el.get("storage"), accept, float(retry), el.where)


def _check_ca(el: Element, path: str) -> None:
    from cryptography import x509

    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as exc:
        raise el.error(f"cannot read ca=\"{path}\": {exc.strerror}") from None
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise el.error(f"ca=\"{path}\" holds no PEM certificate") from None


def acme_host(el: Element, patterns: list[HostPattern], settings: ServerSettings) -> AcmeHost | None:
    """``acme="true"`` on ``<host>``: its exact names, checked (``None`` without it)."""
    if not el.attr_value("acme", parse_bool, False):
        return None
    if settings.acme is None:
        raise el.error('acme="true" needs an <acme> element in <server>',
                       hint='<acme email="admin@example.org"/> before the hosts')
    if el.has("certificate") or el.has("privatekey"):
        raise el.error('a host has either acme="true" or certificate= and privatekey=')
    names: list[str] = []
    for p in patterns:
        name = split_host_port(p.text)[0].lower().rstrip(".")
        if "*" in name:
            raise el.error(f"{p.text}: a wildcard name cannot have an automatic certificate",
                           hint="wildcards need the dns-01 challenge, which is not supported; "
                                "list the exact names")
        if not _NAME.match(name) or name.rsplit(".", 1)[-1].isdigit():  # not an IP address
            raise el.error(f"{p.text}: a certificate is only for DNS names",
                           hint="an ACME CA validates names such as www.example.org")
        if name not in names:
            names.append(name)
    if not names:
        raise el.error('acme="true" needs a hostfilter naming the host',
                       hint='hostfilter="www.example.org example.org"')
    for other in settings.acme_hosts:
        if set(other.names) & set(names):
            raise el.error(f"{', '.join(sorted(set(other.names) & set(names)))} already has an "
                           f"automatic certificate (host at {other.where})")
    return AcmeHost(tuple(patterns), tuple(names), el.where)


def finish_acme(s: ServerSettings) -> None:
    """What needs the whole document: ports, the storage directory."""
    a = s.acme
    if a is None:
        return
    if not any(p.https for p in s.ports):
        raise ConfigError("<acme> needs an HTTPS <port>", where=a.where,
                          hint='<port protocol="HTTPS">443</port>: certificates are for HTTPS')
    if a.challenges == ("http-01",) and not any(not p.https for p in s.ports):
        raise ConfigError("the http-01 challenge needs an HTTP <port>", where=a.where,
                          hint='add <port>80</port>, or challenges="tls-alpn-01"')
    if not a.storage and not s.datadir:
        raise ConfigError("<acme> needs somewhere to keep the account and certificates",
                          where=a.where, hint="add <datadir>DIR</datadir> (they go to DIR/acme) "
                                              'or storage="DIR"')


def acme_identity(s: ServerSettings) -> tuple[Any, ...]:
    """What a reload compares to tell whether ACME must start again: ``<acme>``, the names of
    each ``acme="true"`` host, the storage, the ``<ssl>`` options of the certificates' contexts
    and the cluster's database, not where they are written."""
    if s.acme is None or not s.acme_hosts:
        return ()
    ssl = dataclasses.replace(s.ssl, where="") if s.ssl is not None else None
    database = s.cluster_database.connect_args if s.cluster_database is not None else None
    ca = None
    if s.acme.ca is not None:  # the same file with new certificates in it counts as a change
        try:
            with open(s.acme.ca, "rb") as f:
                ca = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            pass
    return (dataclasses.replace(s.acme, where=""), ca, tuple(h.names for h in s.acme_hosts),
            s.acme.storage_dir(s.datadir), ssl, sorted(database.items()) if database else None)
