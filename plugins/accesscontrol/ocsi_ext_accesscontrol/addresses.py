"""IP addresses and networks as integers, so a per-request check is a mask and a compare.

Client addresses repeat from request to request, so their parsing is cached. IPv4-mapped IPv6
addresses (``::ffff:10.1.2.3``, what a dual-stack socket reports for an IPv4 client) are turned
into the IPv4 address they carry, and so are networks inside ``::ffff:0:0/96``: a rule written
``10.0.0.0/8`` matches the client whichever socket family accepted it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from ocsi.httputil import split_host_port

#: ``(version, integer value)`` of an address.
Address = tuple[int, int]

_V4_MASK = (1 << 32) - 1
_V6_MASK = (1 << 128) - 1


def _strip_port(text: str) -> str:
    """``[::1]:80`` → ``::1``, ``1.2.3.4:80`` → ``1.2.3.4``; bare IPv6 stays as it is."""
    host = split_host_port(text.strip())[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _normalise(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@functools.lru_cache(maxsize=4096)
def parse_address(text: str) -> Address | None:
    """The address in ``text`` (port and brackets allowed), or ``None`` if it is not an IP."""
    try:
        addr = _normalise(ipaddress.ip_address(_strip_port(text)))
    except ValueError:
        return None
    return addr.version, int(addr)


@functools.lru_cache(maxsize=1024)
def canonical_address(text: str) -> str | None:
    """``text`` as a plain address string (no port, no brackets, IPv4-mapped unwrapped)."""
    try:
        return str(_normalise(ipaddress.ip_address(_strip_port(text))))
    except ValueError:
        return None


@dataclass(slots=True, frozen=True)
class Network:
    """An address prefix; a bare address is a /32 (IPv4) or /128 (IPv6) prefix."""

    text: str
    version: int
    net: int
    mask: int

    def __contains__(self, addr: object) -> bool:
        if addr is None:
            return False
        version, value = cast(Address, addr)
        return version == self.version and (value & self.mask) == self.net

    def __str__(self) -> str:
        return self.text


def parse_network(text: str) -> Network:
    """``10.0.0.0/8``, ``10.1.2.3`` (a /32), ``2001:db8::/32``, ``::1``; raises ``ValueError``.

    Host bits set below the prefix length are allowed and ignored (``10.1.2.3/8`` is
    ``10.0.0.0/8``), as Ocsigen does.
    """
    t = text.strip()
    if not t:
        raise ValueError("empty address")
    try:
        net = ipaddress.ip_network(t, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or network") from None
    version, prefix = net.version, net.prefixlen
    value = int(net.network_address)
    if version == 6 and prefix >= 96 and (value >> 32) == 0xFFFF:  # inside ::ffff:0:0/96
        version, prefix, value = 4, prefix - 96, value & _V4_MASK
    width = 32 if version == 4 else 128
    full = _V4_MASK if version == 4 else _V6_MASK
    mask = (full << (width - prefix)) & full
    return Network(t, version, value & mask, mask)


def parse_networks(text: str) -> tuple[Network, ...]:
    """A list of networks separated by spaces and/or commas."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise ValueError("no address given")
    return tuple(parse_network(p) for p in parts)


def in_any(networks: Iterable[Network], addr: Address | None) -> bool:
    return addr is not None and any(addr in n for n in networks)
