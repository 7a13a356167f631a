"""A real ACME CA for the tests: Debian's ``pebble`` and ``pebble-challtestsrv`` on loopback.

challtestsrv is pebble's DNS: every name resolves to 127.0.0.1 (no AAAA), so pebble's
validation connects to the ocsi under test, on the ports the test gives (``httpPort``,
``tlsPort``). Pebble's own HTTPS certificate is issued by a CA the test makes; ocsi is told to
trust it with ``<acme ca=…>``. Validation is real (no ``PEBBLE_VA_ALWAYS_VALID``), nonces are
rejected at pebble's default rate; only pebble's random validation sleep is turned off.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from ocsi.certificates import issue, new_authority
from ocsi.testing import free_port

AVAILABLE = shutil.which("pebble") is not None and shutil.which("pebble-challtestsrv") is not None
needs_pebble = pytest.mark.skipif(not AVAILABLE, reason="pebble is not installed (apt-get install pebble)")


def _wait_tcp(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.args[0]} did not listen on {port} within {timeout} s") from None
            time.sleep(0.05)


class Pebble:
    """``start()``/``stop()`` can be called again: the CA may be down at first, or restarted."""

    def __init__(self, tmp: Path, http_port: int, tls_port: int, validity: int | None = None) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        ca, ca_key = new_authority("pebble test CA")
        cert, key = issue(ca, ca_key, ["localhost", "127.0.0.1"])
        self.ca_file = tmp / "pebble-ca.pem"
        self.ca_file.write_bytes(ca)
        (tmp / "pebble.crt").write_bytes(cert)
        (tmp / "pebble.key").write_bytes(key)
        self.port = free_port()
        self.management = free_port()
        self.dns_port = free_port()
        self.directory = f"https://localhost:{self.port}/dir"
        #: Where the CA validates: the ports of the server under test (settable until start).
        self.http_port, self.tls_port = http_port, tls_port
        #: Seconds each certificate is valid (pebble's default: five years).
        self.validity = validity
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        (self.tmp / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management}",
            "certificate": str(self.tmp / "pebble.crt"), "privateKey": str(self.tmp / "pebble.key"),
            "httpPort": self.http_port, "tlsPort": self.tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
            **({"certificateValidityPeriod": self.validity} if self.validity else {})}}))
        self.dns_management = mgmt = free_port()
        dns = subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "",
             "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{mgmt}",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=open(self.tmp / "challtestsrv.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        self.procs.append(dns)
        _wait_tcp(mgmt, dns)
        ca = subprocess.Popen(
            ["pebble", "-config", str(self.tmp / "pebble.json"),
             "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            env={"PEBBLE_VA_NOSLEEP": "1", "PATH": "/usr/bin:/bin"},
            stdout=open(self.tmp / "pebble.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        self.procs.append(ca)
        _wait_tcp(self.port, ca)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs = []

    def root(self) -> bytes:
        """The root that signs this run's certificates (pebble makes a new one each start)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(f"https://localhost:{self.management}/roots/0",
                                    context=ctx, timeout=10) as r:
            return bytes(r.read())

    def resolve(self, name: str, address: str) -> None:
        """Make the CA's DNS answer ``address`` for ``name`` (127.0.0.1 for every other)."""
        body = json.dumps({"host": name.rstrip(".") + ".", "addresses": [address]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.dns_management}/add-a", data=body,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200

    def orders(self) -> int:
        """How many orders the CA created (a request it rejected, for a bad nonce, is none)."""
        return self.log().count(" orders in the db")

    def log(self) -> str:
        return (self.tmp / "pebble.log").read_text(errors="replace")


@pytest.fixture
def pebble(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``pebble(http_port, tls_port, start=True, validity=None)`` -> :class:`Pebble`, stopped
    at the end."""
    made: list[Pebble] = []

    def make(http_port: int, tls_port: int, start: bool = True, validity: int | None = None) -> Pebble:
        ca = Pebble(tmp_path / f"pebble{len(made)}", http_port, tls_port, validity)
        made.append(ca)
        if start:
            ca.start()
        return ca

    yield make
    for ca in made:
        ca.stop()
