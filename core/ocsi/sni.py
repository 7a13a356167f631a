"""Choosing the certificate of a TLS connection by the name the client sent (SNI).

Each ``<host certificate="…" privatekey="…">`` brings an SSL context. The listeners' own
context (``<ssl>``) is the default, for clients that send no name or a name no such host
claims. The chooser is the default context's ``sni_callback``. It reads the running
configuration's certificates at each handshake, so a reload (or ``ssl:reload``) gives new
connections the new certificates while existing ones keep theirs. The names of
``<host acme="true">`` are asked to :class:`ocsi._acme.serving.AcmeServing` first.

Private: not part of the extension API.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._config.settings import SSLSettings
from ._pipeline.engine import HostPattern

if TYPE_CHECKING:
    from ._acme.serving import AcmeServing


@dataclass(frozen=True, slots=True)
class HostCertificate:
    """The context of one ``<host>``, the names it answers to (its hostfilter) and the files
    it was read from."""

    patterns: tuple[HostPattern, ...]
    context: ssl.SSLContext
    certificate: str
    privatekey: str
    names: tuple[str, ...]
    where: str

    @classmethod
    def read(cls, patterns: tuple[HostPattern, ...], certificate: str, privatekey: str,
             names: tuple[str, ...], options: SSLSettings | None, where: str) -> HostCertificate:
        """Read and check the pair (a located ``ConfigError`` when it is not right)."""
        from .tls import host_context

        context = host_context(certificate, privatekey, names, options, where)
        return cls(patterns, context, certificate, privatekey, names, where)

    def reread(self, options: SSLSettings | None) -> HostCertificate:
        return self.read(self.patterns, self.certificate, self.privatekey, self.names, options,
                         self.where)

    def claims(self, name: str) -> bool:
        return any(p.claims(name) for p in self.patterns)


class CertificateChooser:
    """The ``sni_callback`` of the listeners' context."""

    def __init__(self, default: ssl.SSLContext, hosts: Sequence[HostCertificate] = ()) -> None:
        self.default = default  # what a client without a known name gets (``<ssl>``, re-read)
        self.hosts: Sequence[HostCertificate] = hosts
        #: Certificates from the ACME CA (:mod:`ocsi.acme`), when ``<acme>`` is configured.
        self.acme: AcmeServing | None = None
        default.sni_callback = self

    def update(self, hosts: Sequence[HostCertificate], default: ssl.SSLContext | None = None) -> None:
        self.hosts = hosts
        if default is not None:
            default.sni_callback = self
            self.default = default

    def choose(self, name: str | None) -> ssl.SSLContext:
        if name:
            name = name.lower()
            for host in self.hosts:
                if host.claims(name):
                    return host.context
        return self.default

    def __call__(self, sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> int | None:
        if self.acme is not None:
            acme = self.acme.choose(sock, name)
            if isinstance(acme, int):
                return acme  # refused with this alert
            if acme is not None:
                if acme is not ctx:
                    sock.context = acme
                return None
        chosen = self.choose(name)
        if chosen is not ctx:
            sock.context = chosen
        return None
