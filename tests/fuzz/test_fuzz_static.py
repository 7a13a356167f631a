"""Any request path, one rule: staticmod serves a file inside its root, or answers 4xx.

A real server on a temporary root, with secrets beside it (``secret.txt`` next to the root,
``www2/secret.txt`` whose directory shares the root's name as a prefix) and a symbolic link
inside the root pointing at one of them (refused: ``<followsymlinks value="never"/>``). The root
is served three ways: ``<static dir>`` at the host, in a ``<site>``, and through a
``<static regexp dest root>`` template. Request targets are built from segments an attacker
would use: dot segments plain, percent-encoded, double-encoded and as overlong UTF-8; encoded
slashes and backslashes; NUL, raw and encoded; doubled slashes; unicode names raw and encoded;
``;``, ``?`` and ``#``; the absolute form. Every answer must be a well-formed response whose
status is below 500; a 200 carries the content of a file of the root, never a secret.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from fuzz_settings import budget
from hypothesis import given
from hypothesis import strategies as st

SECRET = b"SECRET-a41b7e"
FILES = {  # path under the root -> content (each unique, none containing another)
    "a.txt": b"public-a\n",
    "sub/b.txt": b"public-b\n",
    "sub/index.html": b"<p>public index</p>\n",
    "\u00e9t\u00e9.txt": b"public-unicode\n",
    "with space.txt": b"public-space\n",
    "back\\slash.txt": b"public-backslash\n",
    "index.html": b"<p>root index</p>\n",
}
SEGMENTS = [
    "", ".", "..", "...", "%2e", "%2E", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "%c0%ae%c0%ae",
    "%e0%80%ae", "%c0%af", "%ef%bc%8e%ef%bc%8e", "..%2f", "..%2F", "%2f", "..%5c", "%5c", "\\", "..\\",
    "%00", "\x00", "a.txt%00", "a.txt\x00.html", "%", "%zz", "%2", ";", "..;", "?", "#", "?x=..",
    "secret.txt", "www2", "..%2fwww2", "link-out", "a.txt", "sub", "b.txt", "index.html",
    "\u00e9t\u00e9.txt", "%C3%A9t%C3%A9.txt", "%e9t%e9.txt", "with space.txt", "with%20space.txt",
    "back\\slash.txt", "back%5cslash.txt", "A.TXT", "a.txt/", "a.txt/.", "~", "$", "%7e", "\u202e",
]
PREFIXES = ["/", "/files/", "/t/", "", "//", "http://localhost/", "http://localhost/t/", "*", "/files"]
STATUS = re.compile(rb"^HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


def make_root(base: Path) -> Path:
    root = base / "www"
    for name, content in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (base / "secret.txt").write_bytes(SECRET)
    (base / "www2").mkdir()
    (base / "www2" / "secret.txt").write_bytes(SECRET)
    os.symlink(base / "secret.txt", root / "link-out")
    return root


def exchange(port: int, target: bytes) -> tuple[int, bytes, bytes]:
    """``GET target`` on a new connection: status, head and body (to the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    match = STATUS.match(data)
    assert match, (target, data[:200])
    head, _, body = data.partition(b"\r\n\r\n")
    if re.search(rb"(?i)\r\ntransfer-encoding:\s*chunked", head):
        body = dechunk(body)
    return int(match.group(1)), head, body


def dechunk(data: bytes) -> bytes:
    out, i = b"", 0
    while True:
        eol = data.index(b"\r\n", i)
        size = int(data[i:eol].split(b";")[0], 16)
        if size == 0:
            return out
        out += data[eol + 2:eol + 2 + size]
        i = eol + 2 + size + 2


@st.composite
def targets(draw: st.DrawFn) -> bytes:
    segment = st.one_of(st.sampled_from(SEGMENTS), st.text(max_size=6))
    parts = draw(st.lists(segment, min_size=1, max_size=7))
    joiner = draw(st.sampled_from(["/", "/", "/", "//", "\\", "%2f", "/./"]))
    return (draw(st.sampled_from(PREFIXES)) + joiner.join(parts)).encode("utf-8", "surrogatepass")


def test_any_path_serves_a_file_of_the_root_or_a_4xx(ocsi_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = make_root(tmp_path)
    srv = ocsi_server(f"""<extension findlib-package="ocsi-ext-staticmod"/>
        <extension findlib-package="ocsi-ext-extendconfiguration"/>
        <host><followsymlinks value="never"/>
          <site path="files"><static dir="{root}"/></site>
          <static regexp="t/(.*)" dest="{root}/\\1" root="{root}"/>
          <static dir="{root}"/>
        </host>""")
    public = set(FILES.values())
    seen: dict[str, int] = {}

    @budget(300)
    @given(targets())
    def request(target: bytes) -> None:
        status, head, body = exchange(srv.port, target)
        assert SECRET not in body and SECRET not in head, target
        assert status < 500, (target, status, body[:200])
        if status == 200:
            assert body in public, (target, body[:200])
        seen[f"{status // 100}xx"] = seen.get(f"{status // 100}xx", 0) + 1

    request()
    assert seen.get("2xx", 0) >= 10 and seen.get("4xx", 0) >= 50, seen
    assert exchange(srv.port, b"/a.txt")[2] == FILES["a.txt"]
