"""The ``<server>`` directives: which exist, their value formats, and the structured ones.

Process-level directives (:data:`FIRST_PASS`) are read once at start; scalar directives
(:data:`SCALARS`, :data:`FLAGS`) set a :class:`~ocsi._config.settings.ServerSettings` field.
``<workers>`` is also read on its own before anything is built
(:func:`configured_workers`): it decides whether ``ocsi`` starts as a worker master.

Private: not part of the extension API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from .errors import ConfigError
from .settings import PortSpec, SSLSettings
from .values import ValueFormatError, parse_bool, parse_duration, parse_int, parse_size
from .xml import Element, parse_file

# -- directive tables --------------------------------------------------------------------------
FIRST_PASS = {"port", "ssl", "acme", "logdir", "syslog", "commandpipe", "user", "group", "minthreads",
              "maxthreads", "workers", "reuseport"}


def _seconds(text: str) -> float:
    return parse_duration(text)  # type: ignore[return-value]  # None only with allow_none


def _seconds_or_none(text: str) -> float | None:
    return parse_duration(text, allow_none=True)


def parse_workers(text: str) -> int:
    """``<workers>`` and ``--workers``: an integer >= 1, or ``auto`` (one per CPU)."""
    value = text.strip()
    if value == "auto":
        return os.cpu_count() or 1
    count = parse_int(value)
    if count < 1:
        raise ValueFormatError(f"{value!r} is not a number of workers (an integer >= 1, or auto)")
    return count


def configured_workers(path: str) -> int:
    """``<workers>`` of the main file, read without building the configuration (the command
    line decides whether to start a worker master before anything else).

    Deciding whether to fork must not change the single-process start, so anything unreadable
    here gives 1: the normal start then reports the located error.
    """
    try:
        root = parse_file(path)
        for server in (c for c in root.children if c.tag == "server"):
            for el in server.children:
                if el.tag == "workers":
                    return parse_workers(el.text)
    except (ConfigError, ValueFormatError, OSError):
        pass
    return 1


def _access_format(text: str) -> str:
    value = text.strip()
    if value not in ("ocsigen", "combined", "json"):
        raise ValueFormatError(f"{value!r} is not an access log format (ocsigen, combined or json)")
    return value


def _log_format(text: str) -> str:
    value = text.strip()
    if value not in ("ocsigen", "json"):
        raise ValueFormatError(f"{value!r} is not a log format (ocsigen or json)")
    return value


def _http_parser(text: str) -> str:
    value = text.strip()
    if value not in ("h11", "httptools"):
        raise ValueFormatError(f"{value!r} is not an HTTP parser (h11 or httptools)")
    if value == "httptools":
        from .._http.fasthead import AVAILABLE

        if not AVAILABLE:
            raise ValueFormatError("httptools is not installed (pip install 'ocsi[fast]')")
    return value


#: tag -> (settings attribute, converter of the text)
SCALARS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "logdir": ("logdir", str.strip),
    "datadir": ("datadir", str.strip),
    "user": ("user", str.strip),
    "group": ("group", str.strip),
    "commandpipe": ("commandpipe", str.strip),
    "uploaddir": ("uploaddir", str.strip),
    "mimefile": ("mimefile", str.strip),
    "maxuploadfilesize": ("maxuploadfilesize", parse_size),
    "maxrequestbodysize": ("maxrequestbodysize", parse_size),
    "maxconnected": ("maxconnected", parse_int),
    "timeout": ("timeout", _seconds),
    "clienttimeout": ("timeout", _seconds),
    "servertimeout": ("servertimeout", _seconds),
    "keepalivetimeout": ("keepalivetimeout", _seconds),
    "shutdowntimeout": ("shutdowntimeout", _seconds_or_none),
    "netbuffersize": ("netbuffersize", parse_int),
    "filebuffersize": ("filebuffersize", parse_int),
    "minthreads": ("minthreads", parse_int),
    "maxthreads": ("maxthreads", parse_int),
    "maxdetachedcomputationsqueued": ("maxdetachedcomputationsqueued", parse_int),
    "maxretries": ("maxretries", parse_int),
    "maxrequestline": ("maxrequestline", parse_size),
    "maxheadersize": ("maxheadersize", parse_size),
    "maxheaders": ("maxheaders", parse_int),
    "accesslogformat": ("accesslogformat", _access_format),
    "logformat": ("logformat", _log_format),
    "httpparser": ("httpparser", _http_parser),
    "workers": ("workers", parse_workers),
    "reuseport": ("reuseport", parse_bool),
}
FLAGS = {"debugmode", "usedefaulthostname", "disablepartialrequests", "respectpipeline"}
SYSLOG_FACILITIES = {
    "auth", "authpriv", "console", "cron", "daemon", "ftp", "kernel", "lpr", "local0", "local1",
    "local2", "local3", "local4", "local5", "local6", "local7", "mail", "ntp", "news", "security",
    "syslog", "uucp", "user",
}
STRUCTURAL = {"extension", "require", "library", "findlib", "host", "extconf", "charset", "ssl",
              "port", "syslog", "acme"}
SERVER_ELEMENTS = sorted(set(SCALARS) | FLAGS | STRUCTURAL)

HOSTNAME = re.compile(r"^[a-zA-Z0-9]+([.-][a-zA-Z0-9]+)*$")
_V6 = re.compile(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$")
_V4 = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$")


def parse_port(el: Element) -> PortSpec:
    """``<port>``: ``N``, ``*:N``, ``[::]:N``, ``[v6]:N`` or ``a.b.c.d:N``; ``protocol`` HTTP(S)."""
    el.check(attributes=["protocol", "h2c", "http3"], text=True)
    proto = (el.get("protocol") or "HTTP").upper()
    if proto not in ("HTTP", "HTTPS"):
        raise el.error(f"protocol=\"{el.get('protocol')}\" is not HTTP or HTTPS")
    h2c = el.attr_value("h2c", parse_bool, False)
    if h2c and proto == "HTTPS":
        raise el.error('h2c="true" is for plain HTTP ports',
                       hint="HTTPS ports offer HTTP/2 to every client by ALPN already")
    http3 = el.attr_value("http3", parse_bool, False)
    if http3:
        if proto != "HTTPS":
            raise el.error('http3="true" is for HTTPS ports',
                           hint='write <port protocol="HTTPS" http3="true">443</port>')
        from ..quic import missing_library

        if (missing := missing_library()) is not None:
            raise el.error(f'http3="true" needs {missing}',
                           hint="install the extra: pip install 'ocsi[http3]'")
    text = el.text.strip()
    address: str | None
    if text.isdigit():
        address, port = None, int(text)
    elif text.startswith("*:") and text[2:].isdigit():
        address, port = "0.0.0.0", int(text[2:])
    elif m := _V6.match(text):
        address, port = m.group(1), int(m.group(2))
    elif m := _V4.match(text):
        address, port = m.group(1), int(m.group(2))
    else:
        raise el.error(f"<port>{text}</port> is not a valid value",
                       hint="write N, *:N, a.b.c.d:N, [::]:N or [v6addr]:N (no host names)")
    if not 0 <= port <= 65535:
        raise el.error(f"port {port} is out of range")
    return PortSpec(address, port, proto == "HTTPS", el.where, h2c, http3)


def parse_ssl(el: Element) -> SSLSettings:
    parts = ("certificate", "privatekey", "ciphers", "dhfile", "curve")
    el.check(children=parts)
    values: dict[str, str] = {}
    for child in el.children:
        child.check(text=True)
        if child.tag in values:
            raise child.error(f"<{child.tag}> given twice in <ssl>")
        values[child.tag] = child.text.strip()
    return SSLSettings(where=el.where, **values)
