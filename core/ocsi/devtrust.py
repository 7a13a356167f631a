"""``ocsi cert dev --install`` / ``--uninstall``: trust the development authority where this
machine's programs look for trust, as mkcert's ``-install`` does.

- The NSS databases Chrome/Chromium (``~/.pki/nssdb``) and Firefox (each profile under
  ``~/.mozilla/firefox``) read, with NSS's own ``certutil`` (Debian's ``libnss3-tools``): the
  databases are NSS's format, so the tool that owns it writes them.
- The system store (Debian's ``/usr/local/share/ca-certificates`` and
  ``update-ca-certificates``), which curl, Python's ``ssl`` and most programs read: done when
  running as root, otherwise the command to run is printed (nothing is run through sudo behind
  the user's back).

The authority is added under one nickname, so ``--uninstall`` removes exactly what was added.

Private: not part of the extension API.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from pathlib import Path

__all__ = ["NICKNAME", "install", "nss_databases", "uninstall"]

#: The name the authority is known by in the NSS databases.
NICKNAME = f"ocsi development CA ({getpass.getuser()}@{socket.gethostname()})"
SYSTEM_DIR = Path("/usr/local/share/ca-certificates")
SYSTEM_FILE = "ocsi-dev-ca.crt"


def nss_databases(home: Path | None = None) -> list[Path]:
    """The NSS databases of this user that exist: Chrome's and every Firefox profile's."""
    home = home or Path.home()
    found = []
    chrome = home / ".pki" / "nssdb"
    if (chrome / "cert9.db").exists():
        found.append(chrome)
    firefox = home / ".mozilla" / "firefox"
    if firefox.is_dir():
        found += sorted(p for p in firefox.iterdir() if (p / "cert9.db").exists())
    return found


def _certutil(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["certutil", *args], capture_output=True, text=True, timeout=30)


def install(ca_path: Path, system: bool = True) -> list[str]:
    """Trust ``ca_path``; what was done (or is left to do), one line each."""
    lines = []
    if shutil.which("certutil") is None:
        lines.append("NSS (Chrome, Firefox): certutil is missing; install libnss3-tools and run "
                     "this again")
    else:
        databases = nss_databases()
        if not databases:
            lines.append("NSS (Chrome, Firefox): no database in this home yet (start the browser "
                         "once, then run this again)")
        for db in databases:
            done = _certutil(["-A", "-d", f"sql:{db}", "-t", "C,,", "-n", NICKNAME, "-i", str(ca_path)])
            lines.append(f"NSS {db}: " + ("trusted" if done.returncode == 0
                                          else f"failed: {done.stderr.strip()}"))
    if system:
        lines.append(_system(ca_path, add=True))
    return lines


def uninstall(system: bool = True) -> list[str]:
    """Remove what :func:`install` added; what was done, one line each."""
    lines = []
    if shutil.which("certutil") is not None:
        for db in nss_databases():
            done = _certutil(["-D", "-d", f"sql:{db}", "-n", NICKNAME])
            lines.append(f"NSS {db}: " + ("removed" if done.returncode == 0 else "not there"))
    if system:
        lines.append(_system(None, add=False))
    return lines


def _system(ca_path: Path | None, add: bool) -> str:
    target = SYSTEM_DIR / SYSTEM_FILE
    if shutil.which("update-ca-certificates") is None:
        return "system store: not a Debian-style system (no update-ca-certificates); see the OS's documentation"
    if os.geteuid() != 0:
        if add:
            return (f"system store (curl, Python): run  sudo cp {ca_path} {target} && "
                    "sudo update-ca-certificates")
        return f"system store: run  sudo rm -f {target} && sudo update-ca-certificates --fresh"
    if add:
        assert ca_path is not None
        SYSTEM_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_path, target)
        target.chmod(0o644)
    elif target.exists():
        target.unlink()
    done = subprocess.run(["update-ca-certificates", *([] if add else ["--fresh"])],
                          capture_output=True, text=True, timeout=120)
    verb = "trusted" if add else "removed"
    return f"system store {target}: " + (verb if done.returncode == 0 else f"failed: {done.stderr.strip()}")
