"""The first pass over ``<server>``: the process-level directives, read once at start.

Ocsigen reads ports, TLS, logs, the command pipe, the user and group and the thread limits
before anything else, so that they are known whatever their place in the file. They apply to
the process (a reload reads them but cannot change them), and :func:`finish_settings` checks
what only makes sense once the whole file is read (an HTTPS port needs a certificate…).

Private: not part of the extension API.
"""

from __future__ import annotations

import logging

from .directives import SCALARS, SYSLOG_FACILITIES, parse_port, parse_ssl
from .errors import ConfigError
from .settings import PortSpec, ServerSettings
from .xml import Element

log = logging.getLogger("ocsi.config")


class FirstPass:
    """Reads the :data:`~ocsi._config.directives.FIRST_PASS` elements into ``settings``."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._ssl_seen = False
        self._acme_seen = False

    def read(self, el: Element) -> None:
        s = self.settings
        if el.tag == "port":
            s.ports.append(parse_port(el))
        elif el.tag == "ssl":
            el.check(children=None)
            if self._ssl_seen:
                raise el.error("only one <ssl> element is supported")
            self._ssl_seen = True
            s.ssl = parse_ssl(el)
        elif el.tag == "acme":
            from .._acme.config import parse_acme

            if self._acme_seen:
                raise el.error("only one <acme> element is supported")
            self._acme_seen = True
            s.acme = parse_acme(el)
        elif el.tag == "syslog":
            el.check(text=True)
            facility = el.text.strip().lower()
            if facility not in SYSLOG_FACILITIES:
                raise el.error(f"unknown {el.text.strip()} facility in <syslog>",
                               hint="known: " + ", ".join(sorted(SYSLOG_FACILITIES)))
            s.syslog = facility
        else:
            read_scalar(s, el)
            if el.tag in ("user", "group"):
                _check_identity(s, el)


def read_scalar(settings: ServerSettings, el: Element) -> None:
    """A directive whose text is one value (``<maxretries>10</maxretries>``)."""
    el.check(text=True)
    attr, convert = SCALARS[el.tag]
    setattr(settings, attr, el.value(convert))


def _check_identity(s: ServerSettings, el: Element) -> None:
    from ..privileges import resolve

    try:  # an unknown name is reported where it is written
        resolve(s.user if el.tag == "user" else None, s.group if el.tag == "group" else None)
    except ConfigError as exc:
        exc.where = el.where
        exc.hint = "create it, or remove the element to keep the current identity"
        raise


def finish_settings(s: ServerSettings, path: str) -> None:
    """Checks and defaults that need the whole document: TLS pairs, default ports."""
    if s.minthreads > s.maxthreads:
        raise ConfigError("maxthreads should be greater than minthreads", where=path)
    if s.maxretries < 1:
        log.warning("%s: <maxretries> %d makes every request fail", path, s.maxretries)
    if s.ssl is not None:
        if not s.ssl.certificate and s.ssl.privatekey:
            raise ConfigError("SSL certificate is missing", where=s.ssl.where,
                              hint="add <certificate>FILE</certificate> inside <ssl>")
        if s.ssl.certificate and not s.ssl.privatekey:
            raise ConfigError("SSL key is missing", where=s.ssl.where,
                              hint="add <privatekey>FILE</privatekey> inside <ssl>")
        if s.ssl.certificate and not any(p.https for p in s.ports):
            log.warning("%s: <ssl> without an HTTPS <port>: listening on *:443 as Ocsigen does",
                        s.ssl.where)
            s.ports.append(PortSpec(None, 443, True, s.ssl.where))
    https = [p for p in s.ports if p.https]
    if s.acme is not None:
        from .._acme.config import finish_acme

        finish_acme(s)
    if https and (s.ssl is None or not s.ssl.certificate) and not s.acme_hosts:
        raise ConfigError("HTTPS port declared without a certificate", where=https[0].where,
                          hint="add <ssl><certificate>…</certificate><privatekey>…</privatekey></ssl>")
    if not s.ports:
        s.ports.append(PortSpec(None, 80, False, path))
