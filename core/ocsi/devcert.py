"""``ocsi cert dev [NAMES…]``: HTTPS for local development in one command, as mkcert does.

A development certificate authority is made once per user (kept in
``$XDG_DATA_HOME/ocsi/dev-ca``, by default ``~/.local/share/ocsi/dev-ca``, the key readable by
the user only). Each run signs a certificate for ``localhost``, ``127.0.0.1``, ``::1`` and the
names given. It prints where the files are, the configuration lines that use them, and how to
make browsers, curl and Python trust the authority. The certificates are made with
``cryptography``; nothing is sent anywhere.

Private: not part of the extension API.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .certificates import issue, new_authority

#: The authority is long-lived (it is trusted once); leaf certificates stay within the 825
#: days browsers accept.
CA_DAYS = 3650
CERT_DAYS = 825
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def authority_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "ocsi" / "dev-ca"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def authority(directory: Path) -> tuple[Path, bytes, bytes, bool]:
    """The development authority (made when absent): its certificate path, PEMs, and whether
    it was made now."""
    cert_path, key_path = directory / "ocsi-dev-ca.crt", directory / "ocsi-dev-ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, cert_path.read_bytes(), key_path.read_bytes(), False
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca, ca_key = new_authority(f"ocsi development CA ({os.environ.get('USER', 'local')})", CA_DAYS)
    _write_private(key_path, ca_key)
    cert_path.write_bytes(ca)
    return cert_path, ca, ca_key, True


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="ocsi cert dev",
                                description="A local development CA and a certificate signed by it.")
    p.add_argument("names", nargs="*", help="more names for the certificate (besides localhost)")
    p.add_argument("--out", default=".", help="where to write the certificate and key (default: here)")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--install", action="store_true",
                       help="also trust the CA in Chrome's and Firefox's NSS databases and the "
                            "system store (as root; otherwise the command is printed)")
    trust.add_argument("--uninstall", action="store_true",
                       help="remove the CA from where --install put it, and make nothing")
    p.add_argument("--no-system", dest="system", action="store_false",
                   help="with --install/--uninstall: leave the system store alone")
    args = p.parse_args(argv)
    if args.uninstall:
        from .devtrust import uninstall

        for line in uninstall(system=args.system):
            print(line)
        return 0
    names = list(dict.fromkeys([*DEFAULT_NAMES, *args.names]))
    ca_path, ca, ca_key, made = authority(authority_dir())
    cert, key = issue(ca, ca_key, names, CERT_DAYS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = (out / "ocsi-dev.crt").resolve(), (out / "ocsi-dev.key").resolve()
    cert_path.write_bytes(cert)
    _write_private(key_path, key)
    print(f"{'Made' if made else 'Using'} the development CA: {ca_path}")
    if args.install:
        from .devtrust import install

        for line in install(ca_path, system=args.system):
            print(line)
    print(f"Certificate for {', '.join(names)} (valid {CERT_DAYS} days):")
    print(f"  {cert_path}\n  {key_path}")
    print(f"""
In the configuration:
  <port protocol="HTTPS">8443</port>
  <ssl><certificate>{cert_path}</certificate><privatekey>{key_path}</privatekey></ssl>

To trust the CA (once): ocsi cert dev --install, or by hand:
  Debian/Ubuntu:  sudo cp {ca_path} /usr/local/share/ca-certificates/ && sudo update-ca-certificates
  Firefox:        Settings > Privacy & Security > Certificates > View Certificates > Import
  curl:           curl --cacert {ca_path} https://localhost:8443/
  Python:         SSL_CERT_FILE={ca_path} (or ssl.create_default_context(cafile=...))""")
    return 0


def cert_command(argv: list[str]) -> int:
    """``ocsi cert SUBCOMMAND``: ``dev`` (a local CA) or ``status`` (ACME certificates)."""
    if argv and argv[0] in ("-h", "--help"):
        print("usage: ocsi cert dev [NAMES...] [--out DIR]\n       ocsi cert status [-c FILE]\n\n"
              "'ocsi cert dev --help' for the details: a local CA, trusted once, and a "
              "certificate for development HTTPS.\n'ocsi cert status': the certificates "
              "obtained from the ACME CA (<acme>), their expiry, the next renewal, the last error.")
        return 0
    if argv and argv[0] == "status":
        from ._acme.status import main as status

        return status(argv[1:])
    if not argv or argv[0] != "dev":
        print("usage: ocsi cert dev [NAMES...] [--out DIR] | ocsi cert status [-c FILE]",
              file=sys.stderr)
        return 2
    return main(argv[1:])
