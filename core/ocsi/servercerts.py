"""The certificates a running server serves, and how they change without a restart.

A reload (or ``ssl:reload``) gives new TLS connections the new certificates while the
connections already open keep theirs: the SNI chooser (:mod:`ocsi.sni`) is given the
``<host certificate>`` contexts, and the ``<ssl>`` pair read again here. ``<acme>`` is served
by an :class:`~ocsi._acme.manager.AcmeManager`, built at start and replaced when a reload
changes it.

None of this runs per request or per connection; it is apart from :mod:`ocsi.server` so that
the server holds the order of start, reload and shutdown, and this module what each does to
the certificates.

Private: not part of the extension API.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import TYPE_CHECKING

from ._config.errors import ConfigError
from ._config.settings import ServerSettings, SSLSettings
from .sni import CertificateChooser, HostCertificate
from .stats import CountedSSLObject
from .tls import server_context

if TYPE_CHECKING:
    from ._acme.manager import AcmeManager

log = logging.getLogger("ocsi.main")

__all__ = ["acme_manager", "certificate_chooser", "renew_certificates", "reread_certificates",
           "switched_acme"]


def acme_manager(s: ServerSettings) -> AcmeManager | None:
    """``<acme>``: every process serves the certificates and answers the challenges; the
    only process, or worker 0, orders them (:mod:`ocsi._acme`), with the other servers of
    a cluster when the configuration has a cluster database (an extension publishes it:
    ocsipersist-pgsql does)."""
    if s.acme is None or not s.acme_hosts:
        return None
    from ._acme.manager import AcmeManager
    from ._acme.serving import AcmeServing
    from ._acme.store import AcmeStore

    store = AcmeStore(s.acme.storage_dir(s.datadir))
    serving = AcmeServing(store, s.acme_hosts, s.ssl, "tls-alpn-01" in s.acme.challenges)
    orders = os.environ.get("OCSI_WORKER", "0") == "0"
    database = s.cluster_database
    return AcmeManager(s.acme, s.acme_hosts, store, serving, orders,
                       dict(database.connect_args) if database is not None else None)


def certificate_chooser(tls: ssl.SSLContext | None, s: ServerSettings,
                        acme: AcmeManager | None) -> CertificateChooser | None:
    """The chooser of each handshake's certificate on the listeners' context ``tls`` (``None``
    without HTTPS listeners), ACME's certificates asked first."""
    if tls is None:
        return None
    tls.sslobject_class = CountedSSLObject  # ACME's refines it
    chooser = CertificateChooser(tls, s.host_certificates)
    if acme is not None:
        chooser.acme = acme.serving
        acme.serving.watch(tls)
    return chooser


async def switched_acme(current: AcmeManager | None, old: ServerSettings, new: ServerSettings,
                        tls: ssl.SSLContext | None, chooser: CertificateChooser | None
                        ) -> AcmeManager | None:
    """The ACME manager after a reload from ``old`` to ``new``: when ``<acme>`` or the
    ``acme="true"`` hosts changed, a new one in place of ``current``
    (:func:`ocsi._acme.manager.switch`); unchanged, ``current`` carries on."""
    from ._acme.config import acme_identity
    from ._acme.manager import switch

    if acme_identity(old) == acme_identity(new):
        return current
    return await switch(current, acme_manager(new), tls, chooser)


def renew_certificates(chooser: CertificateChooser | None, hosts: list[HostCertificate],
                       options: SSLSettings | None) -> bool:
    """New connections get ``hosts``' certificates (already read) and the ``<ssl>`` pair,
    read again. A pair that cannot be read keeps the previous one."""
    if chooser is None:
        return True
    default = None
    if options is not None and options.certificate:
        try:
            default = server_context(options, prompt=False)
        except ConfigError as exc:
            log.error("The <ssl> certificate was not renewed, the previous one stays: %s", exc)
            chooser.update(hosts)
            return False
    chooser.update(hosts, default)
    return True


def reread_certificates(s: ServerSettings, chooser: CertificateChooser | None) -> bool:
    """``ssl:reload``: every certificate of ``s`` read again from its files, for new
    connections; on an error the previous ones stay, and it is logged."""
    try:
        hosts = [h.reread(s.ssl) for h in s.host_certificates]
    except ConfigError as exc:
        log.error("Certificates not reloaded, the previous ones stay: %s", exc)
        return False
    s.host_certificates = hosts
    return renew_certificates(chooser, hosts, s.ssl)
