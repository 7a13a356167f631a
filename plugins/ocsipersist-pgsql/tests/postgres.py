"""A throwaway PostgreSQL cluster: initdb and pg_ctl in a temporary directory, on a loopback
port and a Unix socket, run as the ``postgres`` user when the tests run as root."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

USER = "ocsi"
PASSWORD = "s3cret-test"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> bool:
    return _binary("initdb") is not None and _binary("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ocsi-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.socket_dir = os.path.join(self.dir, "sock")
        os.mkdir(self.socket_dir)
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD)
        if self._as:
            shutil.chown(pwfile, "postgres")
        self._run(_binary("initdb"), "-D", self.data, "-U", USER, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")
        self.start()
        self.psql("CREATE DATABASE ocsipersist")

    def _run(self, *argv: str | None) -> None:
        subprocess.run([*self._as, *(a for a in argv if a is not None)], check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        self._run(_binary("pg_ctl"), "-D", self.data, "-w", "-t", "30", "-l",
                  os.path.join(self.dir, "log"), "-o",
                  f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=200", "start")

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", self.data, "-w", "-t", "30", "-m", "fast", "stop")

    def psql(self, sql: str) -> str:
        out = subprocess.run(["psql", "-h", self.socket_dir, "-p", str(self.port), "-U", USER,
                              "-d", "postgres", "-tAc", sql], check=True, capture_output=True,
                             text=True, timeout=60)
        return out.stdout.strip()

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A throwaway cluster for a test module (import the fixture where it is used)."""
    c = Cluster()
    yield c
    c.destroy()
