"""Global settings from ``<server>`` directives (spec §2.3), with their defaults.

Private: not part of the extension API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._http.fasthead import default_parser
from .._http.hostport import join_host_port
from .._http.limits import Limits

if TYPE_CHECKING:
    from .._acme.config import AcmeHost, AcmeSettings
    from ..sni import HostCertificate


@dataclass(slots=True, frozen=True)
class PortSpec:
    """One ``<port>``: ``address`` is ``None`` for "all interfaces" (IPv4 and IPv6)."""

    address: str | None
    port: int
    https: bool = False
    where: str = "?"
    #: ``h2c="true"``: a plain port also takes cleartext HTTP/2 with prior knowledge.
    h2c: bool = False
    #: ``http3="true"``: an HTTPS port also serves HTTP/3 on the same UDP port (:mod:`ocsi.quic`).
    http3: bool = False

    def describe(self, port: int | None = None) -> str:
        """``http://[::1]:8080``; ``port`` is the bound port when the configuration said 0."""
        where = join_host_port(self.address or "*", self.port if port is None else port)
        return f"{'https' if self.https else 'http'}://{where}"

    def url(self, port: int | None = None) -> str:
        """A URL a browser can open (``http://localhost:8080/`` for every interface), then
        which interfaces: what the "Listening on" notice shows."""
        bound = self.port if port is None else port
        scheme = "https" if self.https else "http"
        if self.address in (None, "*", "0.0.0.0", "::"):
            which = {None: "every IPv4 and IPv6 interface", "*": "every IPv4 and IPv6 interface",
                     "0.0.0.0": "every IPv4 interface", "::": "every IPv6 interface"}[self.address]
            return f"{scheme}://{join_host_port('localhost', bound)}/ ({which})"
        return f"{scheme}://{join_host_port(self.address, bound)}/"


@dataclass(slots=True, frozen=True)
class SSLSettings:
    certificate: str | None = None
    privatekey: str | None = None
    ciphers: str | None = None
    dhfile: str | None = None
    curve: str | None = None
    where: str = "?"


@dataclass(frozen=True, slots=True)
class ClusterDatabase:
    """The PostgreSQL database every server of a cluster reaches, published by the extension
    that holds one (ocsipersist-pgsql, with :meth:`ocsi.LoadContext.publish_cluster_database`).
    What the core coordinates between servers (ACME's shared certificates) keeps it there,
    without knowing which extension it came from."""

    #: Keyword arguments of ``asyncpg.connect``.
    connect_args: Mapping[str, Any]
    #: ``user@host:port/database``, for messages (no password).
    description: str
    where: str


@dataclass(slots=True)
class ServerSettings:
    """Values of the global directives, in force at the end of the configuration.

    Directives that affect hosts (``<charset>``, ``<mimefile>``, ``<uploaddir>``…) apply to the
    ``<host>`` elements written after them, as in Ocsigen; those values are copied into each
    host's scope configuration when the host is parsed.
    """

    ports: list[PortSpec] = field(default_factory=list)
    ssl: SSLSettings | None = None
    #: ``<host certificate privatekey>`` contexts, in document order (:mod:`ocsi.sni`).
    host_certificates: list[HostCertificate] = field(default_factory=list)
    #: ``<acme>``: certificates from an ACME CA for the ``<host acme="true">`` (:mod:`ocsi.acme`).
    acme: AcmeSettings | None = None
    acme_hosts: list[AcmeHost] = field(default_factory=list)
    #: The cluster's shared database, when an extension publishes one (:class:`ClusterDatabase`).
    cluster_database: ClusterDatabase | None = None
    logdir: str | None = None
    syslog: str | None = None
    datadir: str | None = None
    user: str | None = None
    group: str | None = None
    commandpipe: str | None = None
    charset: str | None = "utf-8"
    uploaddir: str | None = None
    maxuploadfilesize: int | None = 2_000_000
    maxrequestbodysize: int | None = 8_000_000
    mimefile: str | None = None
    debugmode: bool = False
    usedefaulthostname: bool = False
    disablepartialrequests: bool = False
    respectpipeline: bool = False
    maxconnected: int = 350
    timeout: float = 30.0
    servertimeout: float = 30.0
    keepalivetimeout: float = 30.0
    shutdowntimeout: float | None = 10.0
    netbuffersize: int = 8192
    filebuffersize: int = 8192
    minthreads: int = 10
    maxthreads: int = 30
    maxdetachedcomputationsqueued: int | None = None
    maxretries: int = 10
    maxrequestline: int = 8 * 1024
    maxheadersize: int = 32 * 1024
    maxheaders: int = 100
    accesslogformat: str = "ocsigen"
    #: ``<logformat>``: warnings and errors as Ocsigen's lines or as JSON objects.
    logformat: str = "ocsigen"
    #: ``<httpparser>``: ``h11`` (the reference) or ``httptools`` (canonical heads in C).
    httpparser: str = field(default_factory=default_parser)
    #: Processes serving requests (``<workers>``, ``--workers``); 1 means no fork at all.
    workers: int = 1
    #: ``<reuseport>``: with workers on Linux, a socket of its own per worker (``SO_REUSEPORT``)
    #: rather than one socket every worker accepts from (:mod:`ocsi.listeners`).
    reuseport: bool = True
    findlib_paths: list[str] = field(default_factory=list)

    def limits(self) -> Limits:
        return Limits(
            max_request_line=self.maxrequestline,
            max_header_bytes=self.maxheadersize,
            max_headers=self.maxheaders,
            max_body=self.maxrequestbodysize,
            header_timeout=self.timeout,
            read_timeout=self.timeout,
            keepalive_timeout=self.keepalivetimeout,
            max_connections=self.maxconnected,
            fast_parser=self.httpparser == "httptools",
        )
