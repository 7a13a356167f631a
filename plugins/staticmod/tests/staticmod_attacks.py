"""The attack table: request targets that must never reach a file outside the document root.

Each target aims at ``secret.txt`` beside the root, at ``www2/secret.txt`` (a sibling directory
sharing the root's name as a prefix), or at a symlink that leaves the root. The tree is made by
:func:`make_tree`; every target must answer without the secret (and never 200).
"""

from __future__ import annotations

import os
from pathlib import Path

SECRET = b"SECRET-7d1f0c"

#: (raw request target, what it tries)
ATTACKS: list[tuple[str, str]] = [
    ("/../secret.txt", "plain dot-dot"),
    ("/../../../../../../etc/passwd", "deep dot-dot"),
    ("/./../secret.txt", "dot then dot-dot"),
    ("/sub/../../secret.txt", "dot-dot after a directory"),
    ("/%2e%2e/secret.txt", "encoded dot-dot"),
    ("/%2E%2E/secret.txt", "encoded dot-dot, upper case"),
    ("/.%2e/secret.txt", "half-encoded dot-dot"),
    ("/%2e./secret.txt", "half-encoded dot-dot (2)"),
    ("/sub/%2e%2e/%2e%2e/secret.txt", "encoded dot-dot after a directory"),
    ("/..%2fsecret.txt", "encoded slash"),
    ("/..%2Fsecret.txt", "encoded slash, upper case"),
    ("/sub%2f..%2f..%2fsecret.txt", "encoded slashes in one segment"),
    ("/%2e%2e%2f%2e%2e%2fsecret.txt", "all encoded"),
    ("/..%5csecret.txt", "encoded backslash"),
    ("/..%5c..%5csecret.txt", "encoded backslashes"),
    ("/%00../secret.txt", "NUL then dot-dot"),
    ("/hello.txt%00.html", "NUL truncation"),
    ("/..%00/secret.txt", "dot-dot NUL"),
    ("/%c0%ae%c0%ae/secret.txt", "overlong UTF-8 dot-dot"),
    ("/%c0%ae%c0%ae%c0%afsecret.txt", "overlong UTF-8 dot-dot-slash"),
    ("/%e0%80%ae%e0%80%ae/secret.txt", "3-byte overlong dot-dot"),
    ("/%c0%2e%c0%2e/secret.txt", "invalid UTF-8 around dots"),
    ("/%252e%252e/secret.txt", "double-encoded dot-dot"),
    ("/..%252fsecret.txt", "double-encoded slash"),
    ("/%25%32%65%25%32%65/secret.txt", "double-encoded dot-dot, spelled out"),
    ("/../www2/secret.txt", "sibling with the root's prefix"),
    ("/%2e%2e/www2/secret.txt", "sibling, encoded"),
    ("/..%2fwww2%2fsecret.txt", "sibling, encoded slashes"),
    ("/link-out", "symlink out of the root (other owner)"),
    ("/link-out-dir/secret.txt", "directory symlink out of the root (other owner)"),
    ("/sub/..;/secret.txt", "Tomcat-style ..;"),
    ("/.../secret.txt", "three dots"),
    ("//secret.txt", "double slash"),
    ("/sub//../../secret.txt", "double slash and dot-dot"),
    ("http://example.org/../secret.txt", "absolute-form dot-dot"),
    ("http://example.org/%2e%2e/secret.txt", "absolute-form encoded dot-dot"),
]

#: Targets for ``<static regexp="files/(.*)" dest="ROOT/\\1" root="ROOT"/>`` and for
#: ``<static regexp="p(.*)" dest="ROOT\\1" root="ROOT"/>`` (prefix sibling through the template).
REGEXP_ATTACKS: list[tuple[str, str]] = [
    ("/files/../secret.txt", "dot-dot"),
    ("/files/..%2fsecret.txt", "encoded slash in the group"),
    ("/files/%2e%2e%2fsecret.txt", "all encoded in the group"),
    ("/files/..%5csecret.txt", "backslash in the group"),
    ("/files/%00", "NUL in the group"),
    ("/files/link-out", "symlink out (other owner)"),
    ("/p2/secret.txt", "template glues the sibling www2"),
    ("/p/../secret.txt", "dot-dot through the glued template"),
    ("/p..%2fsecret.txt", "encoded slash through the glued template"),
]


def make_tree(base: Path) -> Path:
    """``base/www`` (the root), ``base/secret.txt``, ``base/www2/secret.txt``; returns the root."""
    www = base / "www"
    (www / "sub").mkdir(parents=True)
    (www / "hello.txt").write_text("hello\n")
    (www / "sub" / "index.html").write_text("sub index\n")
    (base / "secret.txt").write_bytes(SECRET)
    (base / "www2").mkdir()
    (base / "www2" / "secret.txt").write_bytes(SECRET)
    (base / "outdir").mkdir()
    (base / "outdir" / "secret.txt").write_bytes(SECRET)
    os.symlink(base / "secret.txt", www / "link-out")
    os.symlink(base / "outdir", www / "link-out-dir")
    if os.getuid() == 0:  # links owned by someone else than their targets: ownermatch refuses
        os.lchown(www / "link-out", 65534, 65534)
        os.lchown(www / "link-out-dir", 65534, 65534)
    return www


def owner_mismatch_possible() -> bool:
    return os.getuid() == 0
