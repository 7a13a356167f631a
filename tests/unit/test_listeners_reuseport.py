"""The sockets of each worker: ``<reuseport>``, the group bound by the master, and how sockets
passed at one address (an upgraded master's group) are shared out among the workers."""

from __future__ import annotations

import socket

import pytest
from ocsi._config.errors import ConfigError
from ocsi._config.settings import PortSpec, ServerSettings
from ocsi._extensions.loader import new_plugin_manager
from ocsi.listeners import StartupError, _share_out, open_listeners, reuseport_available
from ocsi.runtime import build_configuration

linux = pytest.mark.skipif(not reuseport_available(), reason="SO_REUSEPORT spreads on Linux only")


def _settings(write_conf, value: str) -> ServerSettings:
    path = write_conf(f"<ocsigen><server><port>0</port><reuseport>{value}</reuseport>"
                      "</server></ocsigen>")
    return build_configuration(new_plugin_manager(), path).settings


def test_the_directive(write_conf) -> None:
    assert ServerSettings().reuseport is True
    assert _settings(write_conf, "false").reuseport is False
    with pytest.raises(ConfigError) as info:
        _settings(write_conf, "sometimes")
    assert "ocsi.conf:1" in str(info.value)


def _spec(port: int = 0) -> PortSpec:
    return PortSpec(address="127.0.0.1", port=port, where="test.conf:1")


@linux
def test_one_socket_per_worker_on_one_port() -> None:
    s = ServerSettings(ports=[_spec()])
    listening = open_listeners(s, 3)
    try:
        socks = [sock for _, sock in listening.sockets]
        assert len(socks) == 3 and len({sock.getsockname() for sock in socks}) == 1
        assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in socks)
        parts = [listening.for_worker(i) for i in range(3)]
        assert [[sock for _, sock in part.sockets] for part in parts] == [[s] for s in socks]
        # a second group on the port is refused, not joined
        port = socks[0].getsockname()[1]
        with pytest.raises(StartupError, match=r"cannot listen on .*test.conf:1.*in use") as info:
            open_listeners(ServerSettings(ports=[_spec(port)]), 2)
        assert info.value.exit_code == 9
    finally:
        listening.close()


def test_off_or_one_worker_binds_one_shared_socket() -> None:
    for settings, workers in ((ServerSettings(ports=[_spec()], reuseport=False), 2),
                              (ServerSettings(ports=[_spec()]), 1)):
        listening = open_listeners(settings, workers)
        try:
            assert len(listening.sockets) == 1 and not listening.per_worker
            assert listening.for_worker(1).sockets == listening.sockets
        finally:
            listening.close()


@linux
@pytest.mark.parametrize("k, workers", [(2, 2), (2, 3), (3, 2), (4, 2), (2, 5)])
def test_passed_sockets_are_shared_out(k: int, workers: int) -> None:
    first = socket.socket()
    first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    first.bind(("127.0.0.1", 0))
    socks = [first]
    try:
        for _ in range(k - 1):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(first.getsockname())
            socks.append(sock)
        owners = _share_out(socks, workers)
        assert all(owners[sock] for sock in socks)  # every socket has a worker
        assert set().union(*owners.values()) == set(range(workers))  # every worker a socket
        assert _share_out(socks[:1], workers) == {}  # one socket: every worker's
    finally:
        for sock in socks:
            sock.close()

