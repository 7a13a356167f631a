"""``ocsi cert dev --install`` / ``--uninstall`` with NSS's real certutil, in a home of the
test's own (a Chrome database and a Firefox profile); the system store is left alone here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("certutil") is None,
                                reason="certutil (libnss3-tools) is not installed")


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    return subprocess.run([sys.executable, "-m", "ocsi", "cert", "dev", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=home)


def listed(db: Path) -> str:
    return subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def test_install_and_uninstall_in_the_browsers_databases(tmp_path):
    chrome = tmp_path / ".pki" / "nssdb"
    firefox = tmp_path / ".mozilla" / "firefox" / "abcd.default-release"
    for db in (chrome, firefox):
        db.mkdir(parents=True)
        subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True,
                       capture_output=True, timeout=30)
    r = run(tmp_path, "--install", "--no-system")
    assert r.returncode == 0, r.stderr
    assert f"NSS {chrome}: trusted" in r.stdout and f"NSS {firefox}: trusted" in r.stdout
    for db in (chrome, firefox):
        line = next(l for l in listed(db).splitlines() if "ocsi development CA" in l)
        assert line.rstrip().endswith("C,,")  # trusted to issue server certificates
    assert (tmp_path / "ocsi-dev.crt").exists()
    r = run(tmp_path, "--uninstall", "--no-system")
    assert r.returncode == 0 and f"NSS {chrome}: removed" in r.stdout
    assert "ocsi development CA" not in listed(chrome) + listed(firefox)


def test_no_database_yet_is_said(tmp_path):
    r = run(tmp_path, "--install", "--no-system")
    assert r.returncode == 0 and "no database in this home yet" in r.stdout
