"""Serving from Python, without a configuration file (Ocsigen's library mode, spec §8.6).

    from ocsi.embed import host, site, serve_forever
    from ocsi_ext_staticmod import static

    serve_forever([host(site("docs", static(dir="/srv/docs")), static(dir="/srv/www"))], port=8080)

The steps are the ones the XML elements build (each built-in extension exposes constructors),
so a site written here behaves exactly as the same site written in a configuration file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._config.scopes import split_site_path
from ._config.settings import PortSpec
from ._extensions.loader import new_plugin_manager
from ._pipeline.engine import Host, HostPattern, Site
from ._pipeline.scope import SiteConfig
from ._pipeline.step import Step
from .runtime import Runtime
from .server import Server


def host(*steps: Step, hostfilter: str = "*", **config: Any) -> Host:
    """A ``<host>``: ``hostfilter`` as in the XML; ``config`` sets :class:`SiteConfig` fields."""
    patterns = [HostPattern.parse(p) for p in hostfilter.split()]
    return Host(patterns, list(steps), SiteConfig(**config), where="<python>", name=hostfilter)


def site(path: str, *steps: Step, charset: str | None = None) -> Site:
    """A ``<site path="…">`` holding ``steps``."""
    return Site(split_site_path(path), list(steps), charset, where="<python>")


def server(hosts: Sequence[Host], port: int = 8080, address: str | None = "127.0.0.1",
           **settings: Any) -> Server:
    """A :class:`Server` for ``hosts``; ``settings`` are :class:`ServerSettings` fields
    (``logdir``, ``maxrequestbodysize``, ``commandpipe``…). Start it with ``await server.start()``."""
    pm = new_plugin_manager()
    settings.setdefault("ports", [PortSpec(address, port)])
    runtime = Runtime.from_hosts(hosts, pm, **settings)
    return Server("<python>", pm=pm, runtime=runtime, install_signals=True)


def serve_forever(hosts: Sequence[Host], port: int = 8080, address: str | None = "127.0.0.1",
                  **settings: Any) -> None:
    """Serve ``hosts`` until SIGTERM/SIGINT or a ``shutdown`` command."""
    from . import eventloop

    eventloop.run(server(hosts, port, address, **settings).serve())
