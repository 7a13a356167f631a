"""<authbasic> in front of staticmod: in memory and over sockets; htpasswd hashes; the CLI."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ocsi import ConfigError

EXTS = ('<extension findlib-package="ocsigenserver.ext.authbasic"/>'
        '<extension findlib-package="ocsigenserver.ext.staticmod"/>')


def basic(user: str, password: str, scheme: str = "Basic") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"{scheme} {token}"}


@pytest.fixture
def www(tmp_path: Path) -> Any:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "secret.txt").write_text("secret")
    return tmp_path / "www"


def protected(start: Callable[..., Any], www: Any, method: str, realm: str = "Admin") -> Any:
    return start(EXTS + f'<host><site path="a"><authbasic realm="{realm}">{method}</authbasic>'
                        f'<static dir="{www}"/></site></host>')


def test_plain_as_in_ocsigen(ocsi_client, www):
    srv = protected(ocsi_client, www, '<plain login="alice" password="wonderland"/>')
    r = srv.get("/a/secret.txt", basic("alice", "wonderland"))
    assert (r.status, r.body) == (200, b"secret")
    for headers in (None, basic("alice", "nope"), basic("bob", "wonderland"),
                    basic("alice", "wonderland", scheme="Bearer"),
                    {"Authorization": "Basic %%%notbase64"},
                    {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}):
        r = srv.get("/a/secret.txt", headers)
        assert r.status == 401, headers  # Ocsigen 5.0.1 gives 400 to several of these
        assert r.headers["www-authenticate"] == 'Basic realm="Admin", charset="UTF-8"'
    assert srv.get("/a/secret.txt", basic("alice", "wonderland", scheme="basic")).status == 200
    assert srv.get("/elsewhere").status == 404  # only the site is protected


def test_utf8_credentials_and_an_escaped_realm(ocsi_client, www):
    srv = protected(ocsi_client, www, '<plain login="zoé" password="mötley"/>', realm='My &quot;box&quot;')
    assert srv.get("/a/secret.txt", basic("zoé", "mötley")).status == 200
    r = srv.get("/a/secret.txt")
    assert r.headers["www-authenticate"] == 'Basic realm="My \\"box\\"", charset="UTF-8"'


def test_after_the_content_it_protects_nothing(ocsi_client, www):
    srv = ocsi_client(EXTS + f'<host><static dir="{www}"/><authbasic realm="R">'
                             '<plain login="a" password="b"/></authbasic></host>')
    assert srv.get("/secret.txt").status == 200


def _htpasswd(path: Any, entries: Any) -> None:
    path.write_text("# users\n" + "".join(f"{u}:{h}\n" for u, h in entries))


def test_htpasswd_with_every_supported_hash(ocsi_client, www, tmp_path):
    import bcrypt
    from argon2 import PasswordHasher
    from passlib.hash import apr_md5_crypt, sha256_crypt, sha512_crypt

    users = tmp_path / "users.htpasswd"
    _htpasswd(users, [
        ("b", bcrypt.hashpw(b"pb", bcrypt.gensalt(rounds=4)).decode()),
        ("y", bcrypt.hashpw(b"py", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)),
        ("a2", PasswordHasher(time_cost=1, memory_cost=1024).hash("pa")),
        ("s5", sha256_crypt.using(rounds=1000).hash("p5")),
        ("s6", sha512_crypt.using(rounds=1000).hash("p6")),
        ("m", apr_md5_crypt.hash("pm")),
        ("clear", "text"),  # refused when read: never a clear-text password
    ])
    srv = protected(ocsi_client, www, f'<htpasswd file="{users}"/>')
    for user, password in (("b", "pb"), ("y", "py"), ("a2", "pa"), ("s5", "p5"), ("s6", "p6"),
                           ("m", "pm")):
        assert srv.get("/a/secret.txt", basic(user, password)).status == 200, user
        assert srv.get("/a/secret.txt", basic(user, "wrong")).status == 401, user
    assert srv.get("/a/secret.txt", basic("clear", "text")).status == 401
    assert srv.get("/a/secret.txt", basic("nobody", "x")).status == 401


def test_htpasswd_is_read_again_when_it_changes(ocsi_client, www, tmp_path):
    import os

    import bcrypt

    users = tmp_path / "users.htpasswd"
    _htpasswd(users, [("u", bcrypt.hashpw(b"old", bcrypt.gensalt(rounds=4)).decode())])
    srv = protected(ocsi_client, www, f'<htpasswd file="{users}"/>')
    assert srv.get("/a/secret.txt", basic("u", "old")).status == 200
    _htpasswd(users, [("u", bcrypt.hashpw(b"new", bcrypt.gensalt(rounds=4)).decode())])
    os.utime(users, ns=(0, 10**9 * 100))  # a new mtime even within the same tick
    assert srv.get("/a/secret.txt", basic("u", "new")).status == 200
    assert srv.get("/a/secret.txt", basic("u", "wrongly")).status == 401


def test_failures_are_logged_with_the_client(ocsi_server, www):
    srv = protected(ocsi_server, www, '<plain login="a" password="b"/>')
    srv.get("/a/secret.txt", basic("mallory", "guess"))
    warnings = srv.wait_log("warnings", "authentication failed")
    assert "authentication failed for 'mallory' from 127.0.0.1 (realm 'Admin')" in warnings


def test_a_client_that_keeps_failing_is_slowed_down():
    from ocsi_ext_authbasic import Limiter

    limiter = Limiter()
    delays = [limiter.failed("10.0.0.1") for _ in range(10)]
    assert delays[:5] == [0.0] * 5 and delays[5:] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert limiter.failed("10.0.0.2") == 0.0  # per client
    limiter.succeeded("10.0.0.1")
    assert limiter.failed("10.0.0.1") == 0.0


def test_methods_are_pluggable(ocsi_memory, www, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "token_method.py").write_text(
        "import ocsi\n"
        "from ocsi_ext_authbasic import register_method\n"
        "class Token:\n"
        "    def __init__(self, value): self.value = value\n"
        "    def check(self, user, password): return password == self.value\n"
        "def _parse(el, ctx):\n"
        "    el.check(attributes=['value'])\n"
        "    return Token(el.require('value'))\n"
        "register_method('token', _parse)\n")
    srv = ocsi_memory(f'<findlib path="{tmp_path}/m"/><extension module="token_method"/>'
                      + EXTS + f'<host><authbasic realm="R"><token value="t0k"/></authbasic>'
                               f'<static dir="{www}"/></host>')
    assert srv.get("/secret.txt", basic("anyone", "t0k")).status == 200
    assert srv.get("/secret.txt", basic("anyone", "x")).status == 401


def test_hash_password_cli(tmp_path):
    from ocsi_ext_authbasic import verify_hash

    for scheme in ("bcrypt", "argon2", "sha512"):
        out = subprocess.run([sys.executable, "-m", "ocsi", "hash-password", "carol", "--scheme",
                              scheme, "--cost", "4" if scheme == "bcrypt" else "1000" if scheme == "sha512" else "1"],
                             input="s3cret\n", capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        user, _, hashed = out.stdout.strip().partition(":")
        assert user == "carol" and verify_hash(hashed, "s3cret") and not verify_hash(hashed, "x")


@pytest.mark.parametrize("inner, message", [
    ("", "Bad syntax for tag authbasic"),
    ('<plain login="a" password="b"/><plain login="c" password="d"/>', "Bad syntax for tag authbasic"),
    ('<ldap/>', "unknown authentication method <ldap>"),
    ('<plain login="a"/>', "missing attribute 'password'"),
    ('<htpasswd file="/no/such/file"/>', "cannot read /no/such/file"),
])
def test_errors_are_located(ocsi_memory, inner, message):
    with pytest.raises(ConfigError) as e:
        ocsi_memory(EXTS + f'<host>\n<authbasic realm="R">{inner}</authbasic></host>')
    assert message in str(e.value).replace("Missing", "missing")
