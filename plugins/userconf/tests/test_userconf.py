"""<userconf>: users' own files, read when they change, confined, and isolated when wrong."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ocsi.testing import assert_config_error
from ocsi import ConfigError

EXTS = ''.join(f'<extension findlib-package="ocsigenserver.ext.{e}"/>'
               for e in ("staticmod", "extendconfiguration", "userconf", "revproxy"))


@pytest.fixture
def homes(tmp_path: Path) -> Any:
    for user, page in (("bob", "bob's page"), ("alice", "alice's page")):
        pub = tmp_path / "home" / user / "public_html"
        pub.mkdir(parents=True)
        (pub / "page.html").write_text(page)
        (pub / "index.html").write_text(f"{user} index")
    (tmp_path / "home" / "alice" / ".ocsi.conf").write_text('<static dir="."/>')
    (tmp_path / "secret.txt").write_text("SECRET")
    return tmp_path / "home"


def serve(start: Callable[..., Any], homes: Any) -> Any:
    return start(EXTS + f'<host><userconf regexp="~([^/]*)(.*)" conf="{homes}/\\1/.ocsi.conf" '
                        f'url="\\2" prefix="~\\1" localpath="{homes}/\\1/public_html"/></host>')


def user_file(homes: Any, user: str, text: str) -> None:
    path = homes / user / ".ocsi.conf"
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # changed, even within a tick


def test_a_users_file_serves_their_directory(ocsi_client, homes):
    user_file(homes, "bob", '<site path=""><listdirs value="false"/><static dir="."/></site>')
    srv = serve(ocsi_client, homes)
    assert srv.get("/~bob/page.html").body == b"bob's page"
    assert srv.get("/~bob/").body == b"bob index"
    assert srv.get("/~alice/page.html").body == b"alice's page"
    assert srv.get("/~carol/page.html").status == 404  # no such file: not concerned


def test_the_file_is_read_again_when_it_changes(ocsi_server, homes):
    user_file(homes, "bob", '<static dir="."/>')
    srv = serve(ocsi_server, homes)
    assert srv.get("/~bob/page.html").status == 200
    user_file(homes, "bob", '<site path=""><forbidfile><file file="page.html"/></forbidfile><static dir="."/></site>')
    assert srv.get("/~bob/page.html").status == 403


@pytest.mark.parametrize("text, message", [
    ('<static dir="../../alice/public_html"/>', "'..' is not allowed"),
    ('<revproxy suburl="(.*)" dest="http://127.0.0.1:1/\\1"/>', "<revproxy> is not allowed"),
    ('<site path=""><followsymlinks value="always"/><static dir="."/></site>', "not allowed in a user configuration"),
    ('<static regexp="[^/]{0,500}" dest="x"/>', "RE2 instructions"),
    ('<static dir="."', "XML syntax error"),
])
def test_a_bad_file_is_that_users_500_and_one_error_line(ocsi_server, homes, text, message):
    user_file(homes, "bob", text)
    srv = serve(ocsi_server, homes)
    for _ in range(3):
        assert srv.get("/~bob/page.html").status == 500
    assert srv.get("/~alice/page.html").body == b"alice's page"  # the others carry on
    errors = srv.wait_log("errors", "userconf configuration file")
    assert errors.count("userconf configuration file for url") == 1 and message in errors


def test_files_stay_inside_localpath(ocsi_client, homes):
    user_file(homes, "bob", '<static regexp="x/(.*)" dest="\\1/../../../secret.txt"/>')
    srv = serve(ocsi_client, homes)
    r = srv.get("/~bob/x/y")
    assert r.status == 403 and b"SECRET" not in r.body  # staticmod's confinement to localpath


def test_users_home_directories():
    from ocsi_ext_userconf import expand_users

    assert expand_users("$u(root)/x") == os.path.expanduser("~root") + "/x"
    assert expand_users("$u(no-such-user-here)/x") is None


@pytest.mark.parametrize("attrs, message", [
    ('regexp="a" conf="c" url="u" prefix="p"', "Missing attributes for <userconf>"),
    ('regexp="(" conf="c" url="u" prefix="p" localpath="l"', "bad regular expression"),
    ('regexp="a" conf="\\1" url="u" prefix="p" localpath="l"', "refers to group 1"),
])
def test_errors_are_located(ocsi_memory, attrs, message):
    assert_config_error(ocsi_memory, EXTS + f"<host>\n<userconf {attrs}/></host>", message, line=2)


# -- what is read as a user's file ----------------------------------------------------------------
def test_a_fifo_is_that_users_500_and_blocks_no_one(ocsi_server, homes):
    conf = homes / "bob" / ".ocsi.conf"
    os.mkfifo(conf)
    srv = serve(ocsi_server, homes)

    def unblock() -> None:  # only if the server were blocked opening it: then the test fails
        try:
            os.close(os.open(conf, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    guard = threading.Timer(8, unblock)
    guard.start()
    try:
        assert srv.get("/~bob/page.html", timeout=4).status == 500
        assert srv.get("/~alice/page.html", timeout=4).body == b"alice's page"
        assert srv.get("/~bob/page.html", timeout=4).status == 500
    finally:
        guard.cancel()
    errors = srv.wait_log("errors", "userconf configuration file")
    assert errors.count("userconf configuration file for url") == 1
    assert "not a regular file" in errors


def test_a_link_to_dev_zero_is_not_read(ocsi_process, homes, tmp_path):
    # the server runs with a bounded address space, so reading /dev/zero could not grow it far
    python = tmp_path / "python-bounded"
    python.write_text(f"#!/bin/sh\nulimit -v 1000000\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    (homes / "bob" / ".ocsi.conf").symlink_to("/dev/zero")
    srv = ocsi_process(EXTS + f'<host><userconf regexp="~([^/]*)(.*)" conf="{homes}/\\1/.ocsi.conf" '
                              f'url="\\2" prefix="~\\1" localpath="{homes}/\\1/public_html"/></host>',
                       python=str(python))
    assert srv.get("/~bob/page.html", timeout=8).status == 500
    assert srv.get("/~alice/page.html").body == b"alice's page"
    errors = wait_for(srv, "userconf configuration file")
    assert "symbolic link" in errors


def wait_for(srv: Any, text: str) -> str:
    for _ in range(250):
        log = srv.log("errors")
        if text in log:
            return log
        time.sleep(0.02)
    return srv.log("errors")


def test_a_file_larger_than_maxsize_is_refused(ocsi_server, homes):
    user_file(homes, "bob", '<static dir="."/>' + " " * 200)
    srv = ocsi_server(EXTS + f'<host><userconf regexp="~([^/]*)(.*)" conf="{homes}/\\1/.ocsi.conf" '
                             f'url="\\2" prefix="~\\1" localpath="{homes}/\\1/public_html" '
                             f'maxsize="100"/></host>')
    assert srv.get("/~bob/page.html").status == 500
    assert "larger than 100 bytes" in srv.wait_log("errors", "userconf configuration file")
    user_file(homes, "bob", '<static dir="."/>')
    assert srv.get("/~bob/page.html").body == b"bob's page"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
@pytest.mark.parametrize("owner, mode, message", [
    (65534, 0o644, "owned by uid 65534"),
    (None, 0o666, "writable by others"),
    (None, 0o664, "writable by others"),
])
def test_a_file_owned_or_writable_by_someone_else_is_refused(ocsi_server, homes, owner, mode,
                                                             message):
    user_file(homes, "bob", '<static dir="."/>')
    conf = homes / "bob" / ".ocsi.conf"
    if owner is not None:
        os.chown(conf, owner, -1)
    conf.chmod(mode)
    srv = serve(ocsi_server, homes)
    assert srv.get("/~bob/page.html").status == 500
    assert message in srv.wait_log("errors", "userconf configuration file")


def test_a_symlinked_file_is_refused(ocsi_server, homes):
    (homes / "alice" / ".ocsi.conf").rename(homes / "bob" / "real.conf")
    (homes / "bob" / ".ocsi.conf").symlink_to("real.conf")
    srv = serve(ocsi_server, homes)
    assert srv.get("/~bob/page.html").status == 500
    assert "symbolic link" in srv.wait_log("errors", "userconf configuration file")


def test_maxsize_must_be_bounded(ocsi_memory):
    with pytest.raises(ConfigError) as e:
        ocsi_memory(EXTS + '<host>\n<userconf regexp="a" conf="c" url="u" prefix="p" localpath="l" '
                           'maxsize="infinity"/></host>')
    assert "maxsize must be a size" in str(e.value)


# -- links in a user's directory ------------------------------------------------------------------
def test_a_same_owner_link_out_of_localpath_is_403(ocsi_client, homes):
    eve = homes / "eve"
    eve.mkdir()
    (eve / "secret").write_text("EVE'S SECRET")
    pub = homes / "bob" / "public_html"
    (pub / "x").symlink_to("../../eve/secret")     # same owner as its target
    (pub / "d").symlink_to("../../eve")
    (pub / "in").symlink_to("page.html")           # a link that stays inside is fine
    (pub / "sub").mkdir()
    (pub / "sub" / "up").symlink_to("../page.html")
    user_file(homes, "bob", '<static dir="."/>')
    srv = serve(ocsi_client, homes)
    for target in ("/~bob/x", "/~bob/d/secret"):
        r = srv.get(target)
        assert r.status == 403 and b"SECRET" not in r.body, target
    assert srv.get("/~bob/in").body == b"bob's page"
    assert srv.get("/~bob/sub/up").body == b"bob's page"


def test_a_same_owner_link_out_of_localpath_in_regexp_mode_is_403(ocsi_client, homes):
    eve = homes / "eve"
    eve.mkdir()
    (eve / "secret").write_text("EVE'S SECRET")
    (homes / "bob" / "public_html" / "x").symlink_to("../../eve/secret")
    user_file(homes, "bob", '<static regexp="f/(.*)" dest="\\1"/>')
    srv = serve(ocsi_client, homes)
    r = srv.get("/~bob/f/x")
    assert r.status == 403 and b"SECRET" not in r.body
    assert srv.get("/~bob/f/page.html").body == b"bob's page"


def test_requests_arriving_together_read_a_changed_file_once(ocsi_server, homes):
    from concurrent.futures import ThreadPoolExecutor

    user_file(homes, "bob", '<static dir="."')  # broken
    srv = serve(ocsi_server, homes)
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: srv.get("/~bob/page.html").status, range(32)))
    assert statuses == [500] * 32
    errors = srv.wait_log("errors", "userconf configuration file")
    assert errors.count("userconf configuration file for url") == 1
