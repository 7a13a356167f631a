"""``ocsi hash-password [USER]``: an htpasswd line for a password read from the terminal (or
standard input), hashed with bcrypt (default), argon2 or SHA-512-crypt."""

from __future__ import annotations

import argparse
import getpass
import sys

import bcrypt
from argon2 import PasswordHasher
from passlib.hash import sha512_crypt

SCHEMES = ("bcrypt", "argon2", "sha512")


def hash_password(password: str, scheme: str = "bcrypt", cost: int | None = None) -> str:
    secret = password.encode()
    if scheme == "bcrypt":
        return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=cost or 12)).decode()
    if scheme == "argon2":
        return PasswordHasher(time_cost=cost or 3).hash(secret)
    if scheme == "sha512":
        return str(sha512_crypt.using(rounds=cost or 656000).hash(secret))
    raise ValueError(f"unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")


def main(argv: list[str] | None = None) -> int:
    """[USER]: print an htpasswd line (USER:HASH) for <htpasswd file>."""
    p = argparse.ArgumentParser(prog="ocsi hash-password",
                                description="Print an htpasswd line (USER:HASH) for <htpasswd file>.")
    p.add_argument("user", nargs="?", default=None, help="the login (default: print the hash alone)")
    p.add_argument("--scheme", choices=SCHEMES, default="bcrypt")
    p.add_argument("--cost", type=int, default=None,
                   help="bcrypt rounds (12), argon2 time cost (3), sha512 rounds (656000)")
    ns = p.parse_args(argv)
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("ocsi: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("ocsi: an empty password", file=sys.stderr)
        return 2
    hashed = hash_password(password, ns.scheme, ns.cost)
    print(f"{ns.user}:{hashed}" if ns.user else hashed)
    return 0
